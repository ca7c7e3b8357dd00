import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

@Suite struct VMInfoTests {
    /// vm2 ─ c1 ─ {g c2, gc1}, vm2 ─ c2: the tree of vminfo(1).
    func tree(_ s: Scratch) throws {
        let t = s.path
        try s.write("vm2/vm.settings", "vm_name=vm2\nvm_ram_size=1G\nvm_storage_hdd1_enable=yes\nvm_storage_hdd1_backend=\(t)/vm2/disk.img\nvm_storage_cdrom1_enable=yes\n")
        try s.write("vm2/c1/vm.settings", "parent \(t)/vm2\nvm_name=c1\n")
        try s.write("vm2/c1/g c2/vm.settings", "parent '\(t)/vm2/c1'\nvm_name='g c2'\n")
        try s.write("vm2/c1/gc1/vm.settings", "parent \(t)/vm2/c1\nvm_name=gc1\nvm_cpu_count=4\n")
        try s.write("vm2/c2/vm.settings", "parent \(t)/vm2\n")
        try s.write("vm2/childs.lst", "\(t)/vm2/c1\n\(t)/vm2/c2\n")
        try s.write("vm2/c1/childs.lst", "\(t)/vm2/c1/g c2\n\(t)/vm2/c1/gc1\n")
        try s.writeBytes("vm2/disk.img", [UInt8](repeating: 0, count: 510) + [0x55, 0xAA])
    }

    @Test func printsTheOriginalsReport() throws {
        let s = Scratch()
        try tree(s)
        let r = try CLI(s).run("vminfo", [], cwd: s.url("vm2/c1/gc1"))
        #expect(r.status == 0)
        #expect(r.err.isEmpty)
        let rule = String(repeating: "=", count: 70), dash = String(repeating: "-", count: 70)
        let expected = """
        \(rule)
        = \(s.url("vm2/c1/gc1"))
        \(rule)

        \(dash)
        - General information (-i)
        \(dash)

        Name: gc1
        State: not running

        \(dash)
        - Hierarchy tree (-t)
        \(dash)

        vm2         -
        ├─ c1       -
        │  ├─ g c2  -
        │  └─ gc1   *
        └─ c2       -

        (*: Current    R: Running    S: Snapshots    ?: Error)

        \(dash)
        - Settings (-s)
        \(dash)

        * Virtual machine settings:

             vm_cpu_count=4
             vm_ram_size=1G
             vm_storage_cdrom1_enable=yes
             vm_storage_hdd1_backend=\(s.url("vm2/disk.img"))
             vm_storage_hdd1_enable=yes

        \(dash)
        - Storage backend (-b)
        \(dash)

        * HDD 1: \(s.url("vm2/disk.img"))

        DOS/MBR boot sector

        * CD-ROM 1: Drive enabled, but no backend file selected.


        """
        #expect(r.out == expected)
    }

    @Test func sectionsFollowTheOrderOfTheirFlags() throws {
        let s = Scratch()
        try tree(s)
        let r = try CLI(s).run("vminfo", ["-s", "-ti", "-s", s.url("vm2")])
        let titles = r.outLines.filter { $0.hasPrefix("- ") }
        #expect(titles == ["- Settings (-s)", "- Hierarchy tree (-t)", "- General information (-i)", "- Settings (-s)"])
    }

    @Test func longAsciiTreeEndsEveryLineWithTheHome() throws {
        let s = Scratch()
        try tree(s)
        let r = try CLI(s).run("vminfo", ["-alt", s.url("vm2/c2")])
        let lines = r.outLines.drop { $0 != "" }.dropFirst().filter { !$0.isEmpty && !$0.hasPrefix("-") && !$0.hasPrefix("(") && !$0.hasPrefix("=") }
        #expect(Array(lines) == [
            "vm2         -  \(s.url("vm2"))",
            "+- c1       -  \(s.url("vm2/c1"))",
            "|  +- g c2  -  \(s.url("vm2/c1/g c2"))",
            "|  `- gc1   -  \(s.url("vm2/c1/gc1"))",
            "`- c2       *  \(s.url("vm2/c2"))",
        ])
    }

    @Test func marksChildrenThatCannotBeLoaded() throws {
        let s = Scratch()
        try tree(s)
        try s.write("vm2/c2/vm.settings", "vm_name=$(oops)\n")
        let r = try CLI(s).run("vminfo", ["-t", s.url("vm2/c1")])
        #expect(r.status == 0)
        #expect(r.out.contains("\n└─ c2       ?\n"))
        #expect(r.out.contains("\n├─ c1       *\n"))
    }

    @Test func showsWhereEachSettingComesFrom() throws {
        let s = Scratch()
        try tree(s)
        try s.write("etc/vmtools.conf", "vm_display_type=none\n")
        let r = try CLI(s).run("vminfo", ["-slp", s.url("vm2/c1/gc1")])
        #expect(r.status == 0)
        let line = { (name: String) in r.outLines.first { $0.hasPrefix("     \(name)=") } ?? "" }
        #expect(line("vm_cpu_count").hasSuffix("# \(s.url("vm2/c1/gc1/vm.settings")):3"))
        #expect(line("vm_ram_size").hasSuffix("# \(s.url("vm2/vm.settings")):2"))
        #expect(line("vm_display_type").hasSuffix("# \(s.url("etc/vmtools.conf")):1"))
        #expect(line("vm_qemu_arch").hasSuffix("# built-in default"))
        #expect(line("cfg_limit_nesting").hasSuffix("# built-in default"))
    }

    /// A command that succeeds never prints WARNING or ERROR (vmtools(1) DIAGNOSTICS).
    @Test func oddButHarmlessFilesGiveNoticesOnly() throws {
        let s = Scratch()
        try s.write("etc/templates/t.tpl", "cfg_limit_nesting=2\nvm_custom_t=1\n")
        try s.write("etc/vmtools.conf", "vm_custom_t=0\n")
        try s.write("vm/vm.settings", "template t\nvm_home=/elsewhere\nvm_name=v\n")
        let r = try CLI(s).run("vminfo", ["-s", s.url("vm")])
        #expect(r.status == 0)
        #expect(!r.err.contains("WARNING") && !r.err.contains("ERROR"))
        #expect(r.err.contains("NOTICE: \(s.url("vm/vm.settings")):2: vm_home is ignored"))
        #expect(r.err.contains("NOTICE: \(s.url("etc/templates/t.tpl")):1: cfg_limit_nesting ignored"))
        #expect(r.out.contains("     vm_custom_t=1\n"))
    }

    @Test func reportsBadOperandsAndGoesOn() throws {
        let s = Scratch()
        try tree(s)
        try s.mkdir("empty")
        try s.write("bad/vm.settings", "vm_name=ok\nvm_ram_size=1 G\n")
        let r = try CLI(s).run("vminfo", ["-i", s.url("empty"), s.url("vm2"), s.url("bad"), s.url("missing")])
        #expect(r.status == 1)
        #expect(r.out.contains("= \(s.url("vm2"))\n"))
        let errors = r.err.split(separator: "\n")
        #expect(errors == [
            "vminfo: ERROR: \(s.url("empty")): not a VM home (no vm.settings)",
            "vminfo: ERROR: \(s.url("bad/vm.settings")):2: vm_ram_size: space must be inside single quotes (for example vm_ram_size='a b'); values are data, never shell code",
            "vminfo: ERROR: \(s.url("missing")): no such file or directory",
        ])
    }

    @Test(.requires("qemu-img")) func printsJSONWithProvenanceChildrenAndDisks() throws {
        guard let qemuImg = requireTool("qemu-img") else { return }
        let s = Scratch()
        try tree(s)
        try #require(try Subprocess(qemuImg, ["create", "-q", "-f", "qcow2", s.url("vm2/c1/gc1/hdd.qcow2"), "64M"]).run().status == 0)
        try s.write("vm2/c1/gc1/vm.settings", "parent \(s.url("vm2/c1"))\nvm_name=gc1\nvm_storage_hdd1_backend=hdd.qcow2\n")
        let r = try CLI(s).run("vminfo", ["-j", s.url("vm2/c1/gc1"), s.url("nowhere")])
        #expect(r.status == 1)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]])
        #expect(doc.count == 2)
        let vm = doc[0]
        #expect(vm["home"] as? String == s.url("vm2/c1/gc1"))
        #expect(vm["parent"] as? String == s.url("vm2/c1"))
        #expect(vm["ancestors"] as? [String] == [s.url("vm2/c1"), s.url("vm2")])
        #expect((vm["state"] as? [String: Any])?["running"] as? Bool == false)
        let settings = try #require(vm["settings"] as? [String: [String: Any]])
        #expect(settings["vm_ram_size"]?["value"] as? String == "1G")
        #expect(settings["vm_ram_size"]?["source"] as? String == "parent")
        #expect(settings["vm_ram_size"]?["file"] as? String == s.url("vm2/vm.settings"))
        #expect(settings["vm_ram_size"]?["line"] as? Int == 2)
        #expect(settings["vm_qemu_arch"]?["source"] as? String == "default")
        #expect((settings["vm_storage_hdd1_backend"]?["overrides"] as? [[String: Any]])?.count == 2)
        let disks = try #require(vm["disks"] as? [[String: Any]])
        #expect(disks.map { $0["slot"] as? String } == ["hdd1", "cdrom1"])
        // A relative backend is relative to the VM home.
        #expect(disks[0]["path"] as? String == s.url("vm2/c1/gc1/hdd.qcow2"))
        let chain = try #require(disks[0]["image"] as? [[String: Any]])
        #expect(chain.first?["format"] as? String == "qcow2")
        #expect(chain.first?["virtual-size"] as? Int == 64 << 20)
        let c1 = try CLI(s).run("vminfo", ["-j", s.url("vm2/c1")])
        let c1doc = try #require(try JSONSerialization.jsonObject(with: Data(c1.out.utf8)) as? [[String: Any]])
        #expect(c1doc[0]["children"] as? [String] == [s.url("vm2/c1/g c2"), s.url("vm2/c1/gc1")])
        #expect(doc[1]["operand"] as? String == s.url("nowhere"))
        #expect((doc[1]["error"] as? String)?.contains("no such file or directory") == true)
    }

    @Test func refusesHostileSettingsWithoutRunningThem() throws {
        let s = Scratch()
        let marker = s.url("pwned")
        try s.write("vm/vm.settings", "vm_name=x\nvm_ram_size=$(touch \(marker))\n")
        try s.write("etc/vmtools.conf", "vm_cpu_count=`touch \(marker)`\n")
        let r = try CLI(s).run("vminfo", [s.url("vm")])
        #expect(r.status == 1)
        #expect(r.err == "vminfo: ERROR: \(s.url("etc/vmtools.conf")):1: command substitution (`…`) needs a shell; vmtools reads settings files as data (system layer: \(s.url("etc")), set by VMTOOLS_SYSCONFDIR)\n")
        #expect(!FileManager.default.fileExists(atPath: marker))
        try s.write("etc/vmtools.conf", "")
        let r2 = try CLI(s).run("vminfo", [s.url("vm")])
        #expect(r2.status == 1)
        #expect(r2.err.hasPrefix("vminfo: ERROR: \(s.url("vm/vm.settings")):2: vm_ram_size: '$' must be inside single quotes"))
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    /// Running state comes from a real QEMU holding the lock on its pid file.
    @Test(.requires("qemu-system-x86_64")) func seesARunningQEMU() throws {
        guard let qemu = requireTool("qemu-system-x86_64") else { return }
        let s = Scratch()
        try tree(s)
        let home = s.url("vm2/c1")
        // A stale pid file naming a live process that is not QEMU (this test) means "not running".
        try s.write("vm2/c1/qemu.pid", "\(getpid())\n")
        #expect(try CLI(s).run("vminfo", ["-i", home]).out.contains("State: not running\n"))
        // The library's own spawner: argv array, clean signal mask (QEMU must see SIGTERM).
        let started = try Subprocess(qemu, ["-machine", "none", "-nodefaults", "-display", "none", "-daemonize", "-pidfile", home + "/qemu.pid"]).run()
        try #require(started.status == 0, "\(started.stderrText)")
        let pid = try #require(Int32(try s.read("vm2/c1/qemu.pid").trimmingCharacters(in: .whitespacesAndNewlines)))
        defer {
            kill(pid, SIGKILL)
        }
        let info = try CLI(s).run("vminfo", ["-il", home])
        #expect(info.out.contains("State: RUNNING (PID \(pid))"))
        #expect(!info.out.contains("not running"))
        #expect(info.out.contains("Display: none\n"))
        #expect(info.out.contains("Accel: tcg\n"))
        let tree = try CLI(s).run("vminfo", ["-t", s.url("vm2")])
        #expect(tree.out.contains("├─ c1       R\n"))
        let json = try CLI(s).run("vminfo", ["-j", home])
        let state = try #require((try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]])?.first?["state"] as? [String: Any])
        #expect(state["running"] as? Bool == true)
        #expect(state["pid"] as? Int == Int(pid))
        #expect(state["accelerator"] as? String == "tcg")
        kill(pid, SIGTERM)
        // QEMU removes its pid file when it exits; poll with a deadline.
        #expect(waitUntil(20) { !FileManager.default.fileExists(atPath: home + "/qemu.pid") })
        #expect(try CLI(s).run("vminfo", ["-i", home]).out.contains("State: not running\n"))
    }
}
