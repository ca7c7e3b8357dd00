import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// vmup, vmps, vmmon, vmdown on the real test guest (TCG here; KVM where it
/// really works). Every VM started is stopped, by pid, even when a test fails.
@Suite(.serialized) struct LifecycleTests {
    @Test(.requiresGuest) func startsListsControlsAndStopsAVMHome() throws {
        guard let lab = try BootLab.guest() else { return }
        let home = try lab.makeVM("web server")
        let up = try lab.up(home)
        try #require(up.status == 0, "\(up.err)")
        #expect(up.err.contains("INFO: web server: virtual machine started (pid "))
        #expect(lab.readyOrDump(home), "\(lab.serial(home))")
        let pid = try #require(lab.pid(home))

        let ps = try lab.cli.run("vmps")
        #expect(ps.status == 0)
        #expect(ps.outLines.first?.split(separator: " ") == ["PID", "NAME", "DISPLAY"], "\(ps.out)")
        // Other suites' VMs may widen the columns.
        #expect(ps.outLines.contains { $0.split(separator: " ") == ["\(pid)", "web", "server", "none"] }, "\(ps.out)")
        let fields = try lab.cli.run("vmps", ["-r", "-o", "phqa", "-d", home])
        #expect(fields.status == 0, "\(fields.err)")
        // The accelerator is the host's: tcg here, kvm where KVM runs guests.
        #expect(["tcg", "kvm"].map { "\(pid)  \(home)  \(home)/monitor.sock  \($0)\n" }.contains(fields.out), "\(fields.out)")
        let json = try lab.cli.run("vmps", ["-j", "-d", home])
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]])
        #expect(doc.first?["pid"] as? Int == Int(pid))
        #expect(doc.first?["home"] as? String == home)

        let mon = try lab.cli.run("vmmon", ["-c", "info status", home])
        #expect(mon.status == 0 && mon.out.contains("VM status: running"), "\(mon.err)")
        let piped = try lab.cli.run("vmmon", [home])
        #expect(piped.out.hasPrefix("QEMU "))

        let info = try lab.cli.run("vminfo", ["-i", home])
        #expect(info.out.contains("State: RUNNING (PID \(pid))"))

        // A second start is refused clearly.
        let again = try lab.cli.run("vmup", [home])
        #expect(again.status == 1 && again.err.contains("already running (pid \(pid))"))

        let down = try lab.down(home)
        #expect(down.status == 0, "\(down.err)")
        #expect(!down.err.contains("WARNING") && !down.err.contains("ERROR"))
        #expect(lab.serial(home).contains("VMTOOLS-GUEST: POWEROFF"), "the guest did not power off cleanly")
        #expect(!FileManager.default.fileExists(atPath: home + "/qemu.pid"))
        #expect(!lab.s.exists("web server/monitor.sock") && !lab.s.exists("web server/qmp.sock"), "no stale sockets")
        #expect(try lab.cli.run("vmps", ["-d", home]).status == 3)
        #expect(try lab.cli.run("vmdown", [home]).status == 3)
    }

    @Test(.requiresGuest) func persistentSnapshotAndReadOnlyDisks() throws {
        guard let lab = try BootLab.guest() else { return }
        let home = try lab.makeVM("disks")
        func boot(_ flags: [String], _ command: String, expect marker: String) throws {
            let r = try lab.up(home, flags, command: command)
            try #require(r.status == 0, "\(r.err)")
            #expect(lab.readyOrDump(home), "\(lab.serial(home))")
            #expect(lab.serial(home).contains(marker), "\(flags) \(command): \(lab.serial(home))")
            #expect(try lab.down(home).status == 0)
        }
        try boot([], "write 0:0:1:0 persistent data", expect: "VMTOOLS-GUEST: WROTE sda")
        try boot([], "read 0:0:1:0", expect: "VMTOOLS-GUEST: DATA persistent data")
        // Snapshot mode: the guest may write, and the write is discarded.
        try boot(["-s"], "write 0:0:1:0 discarded", expect: "VMTOOLS-GUEST: WROTE sda")
        try boot([], "read 0:0:1:0", expect: "VMTOOLS-GUEST: DATA persistent data")
        // Read-only mode: the disk refuses writes (virtio, read-only=on).
        try boot(["-r"], "write vda refused", expect: "VMTOOLS-GUEST: WRITE-FAILED vda")
        try boot(["-r"], "read vda", expect: "VMTOOLS-GUEST: DATA persistent data")
    }

    @Test(.requiresGuest) func bootsBareISOAndQcow2Images() throws {
        guard let lab = try BootLab.guest() else { return }
        let log = lab.s.url("bare.log")
        let iso = try lab.cli.run("vmup", ["-o", "vm_qemu_params=-serial file:\(log)", Guest.iso])
        #expect(iso.status == 0, "\(iso.err)")
        #expect(waitUntil(120) { textIfPresent(log).contains("VMTOOLS-GUEST: READY") })
        let ps = try lab.cli.run("vmps", ["-r", "-o", "pn"])
        let row = try #require(ps.outLines.first { $0.hasSuffix("  guest.iso") })
        let pid = try #require(row.split(separator: " ").first.map(String.init))
        #expect(try lab.cli.run("vmdown", ["-p", pid]).status == 0)

        // The disk form, from a copy (a bare qcow2 boots read-write).
        let disk = lab.s.url("guest copy.qcow2")
        try FileManager.default.copyItem(atPath: Guest.qcow2, toPath: disk)
        let log2 = lab.s.url("disk.log")
        let q = try lab.cli.run("vmup", ["-o", "vm_qemu_params=-serial file:\(log2)", disk])
        #expect(q.status == 0, "\(q.err)")
        #expect(waitUntil(120) { textIfPresent(log2).contains("VMTOOLS-GUEST: READY") })
        let row2 = try #require(try lab.cli.run("vmps", ["-r", "-o", "pn"]).outLines.first { $0.hasSuffix("  guest copy.qcow2") })
        // A bare boot has a QMP socket in its run-time directory: the guest powers off.
        let down = try lab.cli.run("vmdown", ["-p", String(row2.split(separator: " ")[0])])
        #expect(down.status == 0, "\(down.err)")
        #expect(!down.err.contains("has no monitor socket") && !down.err.contains("terminating"), "\(down.err)")
        #expect(try String(contentsOfFile: log2, encoding: .utf8).contains("VMTOOLS-GUEST: POWEROFF"))
        // Other suites' VMs may still be listed (status 0), or none (status 3).
        let gone = try lab.cli.run("vmps", ["-r", "-o", "n"])
        #expect((gone.status == 0 || gone.status == 3) && gone.err.isEmpty, "\(gone.err)")
        #expect(!gone.out.contains("guest copy.qcow2"), "\(gone.out)")
    }

    @Test(.requiresGuest) func twentyParallelStartsMakeOneQEMU() throws {
        guard let lab = try BootLab.guest() else { return }
        let home = try lab.makeVM("race")
        var procs: [(Process, String)] = []
        for k in 0..<20 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: lab.cli.bin + "/vmup")
            p.arguments = ["-q", home]
            p.environment = lab.cli.environment
            let errPath = lab.s.url("err.\(k)")
            FileManager.default.createFile(atPath: errPath, contents: nil)
            p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            procs.append((p, errPath))
        }
        var started = 0, refused = 0
        for (p, errPath) in procs {
            p.waitUntilExit()
            let err = try String(contentsOfFile: errPath, encoding: .utf8)
            if p.terminationStatus == 0 { started += 1 } else if err.contains("already running") { refused += 1 } else { Issue.record("unexpected: \(err)") }
        }
        #expect(started == 1 && refused == 19)
        let running = QemuProcess.all().filter { $0.argument(after: "-pidfile") == home + "/qemu.pid" }
        #expect(running.count == 1)
        #expect(try lab.cli.run("vmdown", ["-k", home]).status == 0)
    }

    /// A guest that never handles the power button (no OS: nothing boots)
    /// still stops: SIGTERM once the ACPI stage has timed out.
    @Test(.requiresGuest) func vmdownEscalatesWhenTheGuestIgnoresACPI() throws {
        guard let lab = try BootLab.guest(config: BootLab.config(["vm_ram_size": "64M", "vm_qemu_shutdown_timeout": "2", "vm_serial_log": nil])) else { return }
        try lab.s.write("deaf/vm.settings", "vm_name=deaf\nvm_storage_cdrom1_enable=yes\n")
        let home = lab.s.url("deaf")
        #expect(try lab.cli.run("vmup", [home]).status == 0)
        let start = Date()
        let down = try lab.cli.run("vmdown", [home])
        let took = Date().timeIntervalSince(start)
        #expect(down.status == 0, "\(down.err)")
        #expect(took >= 2 && took < 10, "took \(took) s")
        #expect(down.err.contains("terminating QEMU processes"))
        #expect(try lab.cli.run("vmps", ["-d", home]).status == 3)
    }

    @Test(.requiresGuest) func aVMWithChildrenStartsOnlyInSnapshotOrReadOnlyMode() throws {
        guard let lab = try BootLab.guest() else { return }
        let home = try lab.makeVM("parent")
        try lab.s.write("parent/childs.lst", lab.s.url("parent/child") + "\n")
        let rw = try lab.cli.run("vmup", ["-n", home])
        #expect(rw.status == 1 && rw.err.contains("has children"))
        #expect(try lab.cli.run("vmup", ["-n", "-s", home]).status == 0)
        #expect(try lab.cli.run("vmup", ["-n", "-r", home]).status == 0)
    }

    /// Issue 5: an argument a buildcmd module script prints reaches QEMU
    /// (its command line) and the guest (it runs the command it carries).
    @Test(.requiresGuest) func aBuildcmdModuleScriptReachesTheGuest() throws {
        guard let lab = try BootLab.guest() else { return }
        try lab.s.writeScript("etc/modules/buildcmd/c_cmd", """
        #!/bin/sh
        printf '%s\\n' -fw_cfg "name=opt/vmtools/cmd,string=write 0:0:1:0 $vm_name via a module"
        """)
        let home = try lab.makeVM("modvm", "vm_modules_buildcmd=c_cmd")
        let r = try lab.up(home)
        try #require(r.status == 0, "\(r.err)")
        let pid = try #require(lab.pid(home))
        let cmdline = try String(decoding: Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")), as: UTF8.self)
        #expect(cmdline.split(separator: "\0").contains("name=opt/vmtools/cmd,string=write 0:0:1:0 modvm via a module"))
        #expect(lab.readyOrDump(home) && lab.serial(home).contains("VMTOOLS-GUEST: WROTE sda"), "\(lab.serial(home))")
        #expect(try lab.down(home).status == 0)
    }

    /// The shipped modern and headless templates boot the guest: q35,
    /// virtio disk and network card, no display.
    @Test(.requiresGuest) func theModernHeadlessTemplatesBootTheGuest() throws {
        guard let lab = try BootLab.guest() else { return }
        try lab.s.mkdir("share/templates")
        for t in ["modern.tpl", "headless.tpl"] {
            try FileManager.default.copyItem(atPath: Repo.root + "/etc/templates/" + t, toPath: lab.s.url("share/templates/" + t))
        }
        // The guest command comes through a module: -o vm_qemu_params would replace the template's.
        try lab.s.writeScript("etc/modules/buildcmd/c_cmd", "#!/bin/sh\necho -fw_cfg; echo 'name=opt/vmtools/cmd,string=write vda on virtio'\n")
        let home = try lab.makeVM("modern", "template modern headless\nvm_modules_buildcmd=c_cmd")
        let r = try lab.up(home)
        try #require(r.status == 0, "\(r.err)")
        #expect(lab.readyOrDump(home), "\(lab.serial(home))")
        #expect(lab.serial(home).contains("VMTOOLS-GUEST: WROTE vda"), "\(lab.serial(home))")
        let pid = try #require(lab.pid(home))
        let argv = try String(decoding: Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")), as: UTF8.self).split(separator: "\0")
        #expect(argv.contains("q35") && argv.contains { $0.hasPrefix("virtio-net-pci,") } && argv.contains("none"), "\(argv)")
        #expect(try lab.down(home).status == 0)
    }

    /// vmfix(1): a forked tree renamed with a plain `mv` boots again
    /// after `vmfix -rps`, the child reading its parent's data through the
    /// relinked overlay; and no tree command touches a running VM.
    @Test(.requiresGuest) func aTreeRenamedWithMvBootsAfterVmfix() throws {
        guard let lab = try BootLab.guest() else { return }
        let base = try lab.makeVM("base")
        var r = try lab.up(base, command: "write 0:0:1:0 written by the parent")
        try #require(r.status == 0, "\(r.err)")
        #expect(lab.readyOrDump(base) && lab.serial(base).contains("VMTOOLS-GUEST: WROTE sda"), "\(lab.serial(base))")
        #expect(try lab.down(base).status == 0)
        #expect(try lab.cli.run("vmfork", ["-q", base, base + "/child"]).status == 0)
        let renamed = lab.s.url("base renamed")
        try FileManager.default.moveItem(atPath: base, toPath: renamed)
        #expect(try lab.cli.run("vmfix", ["-rps", lab.s.path]).status == 3)
        #expect(try lab.cli.run("vmfix", ["-ran", lab.s.path]).status == 0)
        let child = renamed + "/child"
        r = try lab.up(child, command: "read 0:0:1:0")
        try #require(r.status == 0, "\(r.err)")
        #expect(lab.readyOrDump(child), "\(lab.serial(child))")
        #expect(lab.serial(child).contains("VMTOOLS-GUEST: DATA written by the parent"), "\(lab.serial(child))")
        for (command, args) in [("vmcp", [child, lab.s.url("copy")]), ("vmfork", [child, lab.s.url("fork")]),
                                ("vmmv", [child, lab.s.url("moved")]), ("vmrm", ["-y", child]), ("vmmerge", [child])] {
            let x = try lab.cli.run(command, args)
            #expect(x.status == 1 && x.err.contains("running"), "\(command): \(x.err)")
        }
        #expect(try lab.down(child).status == 0)
        #expect(try lab.cli.run("vmfix", ["-ran", lab.s.path]).status == 0)
    }
}
