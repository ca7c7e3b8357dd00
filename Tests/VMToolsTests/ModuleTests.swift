import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// External modules (vmtools(7) CUSTOMIZATION, vmtools(7) CUSTOMIZATION): real scripts
/// in a scratch configuration tree replace built-in modules or add new ones.
@Suite struct ModuleTests {
    /// A CLI with the default configuration, which reads the user's
    /// directory too (issue 10 C5: no administrator needed).
    func lab() throws -> CLI {
        try CLI(Scratch())
    }

    /// Writes an executable module script under `root` (`xdg/vmtools`, `etc` or `share`).
    @discardableResult
    func module(_ cli: CLI, _ root: String, _ category: String, _ name: String, _ body: String, mode: Int = 0o755) throws -> String {
        let rel = "\(root)/modules/\(category)/\(name)"
        return try cli.scratch.writeScript(rel, "#!/bin/sh\n" + body + "\n", mode: mode)
    }

    @Test func aConfigureOverrideSetsValuesThatAreSaved() throws {
        let cli = try lab()
        // Replaces the built-in ram_size; sees the settings and the category in its environment.
        try module(cli, "xdg/vmtools", "configure/settings", "ram_size", """
        [ "$VMTOOLS_CATEGORY" = configure/settings ] || exit 9
        echo "vm_ram_size=384M"
        echo "# a comment, ignored"
        echo "vm_custom_from=$vm_cpu_count cpus"
        """)
        _ = try cli.scratch.write("etc/vmtools.conf", "vm_custom_from=''\n")
        try module(cli, "etc", "configure/templates", "autodetect", "echo 'template headless'")
        _ = try cli.scratch.write("share/templates/headless.tpl", "vm_display_type='none'\n")
        let home = cli.scratch.url("vm")
        let r = try cli.run("vmcreate", ["-n", "-y", "-o", "vm_storage_hdd1_createsize=0", "--", home])
        #expect(r.status == 0, "\(r.err)")
        let f = try VMSettingsFile.read(home + "/vm.settings")
        #expect(f.value("vm_ram_size") == "384M")
        #expect(f.value("vm_custom_from") == "2 cpus")
        #expect(f.templates == ["headless"])
        // The command line still wins over a module's plain NAME=VALUE.
        let r2 = try cli.run("vmcreate", ["-n", "-y", "-o", "vm_ram_size=1G", "-o", "vm_storage_hdd1_createsize=0", "--", cli.scratch.url("vm2")])
        #expect(r2.status == 0, "\(r2.err)")
        #expect(try VMSettingsFile.read(cli.scratch.url("vm2/vm.settings")).value("vm_ram_size") == "1G")
    }

    @Test(.requires("qemu-system-x86_64")) func aBuildcmdModuleAddsArgumentsInOrder() throws {
        guard requireTool("qemu-system-x86_64") != nil else { return }
        let cli = try lab()
        try module(cli, "etc", "buildcmd", "name", """
        [ "$VMTOOLS_DRY_RUN" = yes ] || exit 9
        printf '%s\\n' -name "$vm_name-from-a-module"
        """)
        // A new module, named by the VM itself; it sees the arguments so far.
        try module(cli, "xdg/vmtools", "buildcmd", "c_last", """
        printf '%s\\n' "$VMTOOLS_QEMU_ARGV" | grep -q -- '-from-a-module' || exit 8
        printf '%s\\n' -fw_cfg 'name=opt/test,string=a b,c' ''
        """)
        _ = try cli.scratch.write("vm/vm.settings", "vm_name=vm\nvm_modules_buildcmd=c_last\nvm_display_type=none\n")
        let r = try cli.run("vmup", ["-n", "-v", cli.scratch.url("vm")])
        #expect(r.status == 0, "\(r.err)")
        let argv = try #require(r.outLines.first { $0.contains("qemu-system") })
        #expect(argv.contains("-name vm-from-a-module"))
        #expect(argv.hasSuffix("-fw_cfg 'name=opt/test,string=a b,c'"), "\(argv)")
        // vminfo -m says where each module comes from.
        let info = try cli.run("vminfo", ["-m", cli.scratch.url("vm")])
        let rows = info.outLines.map { $0.split(separator: " ").map(String.init) }
        #expect(rows.contains(["name", cli.scratch.url("etc/modules/buildcmd/name")]))
        #expect(rows.contains(["c_last", cli.scratch.url("xdg/vmtools/modules/buildcmd/c_last")]))
        #expect(rows.contains(["qemu", "built-in"]))
        // In the order they run: the VM's extra module last.
        #expect(rows.lastIndex(of: ["storage_hdd", "built-in"])! < rows.firstIndex { $0.first == "c_last" }!)
    }

    @Test func userBeatsSystemBeatsBuiltinAndTheUserNeedsToBeEnabled() throws {
        let cli = try lab()
        let user = try module(cli, "xdg/vmtools", "clone", "storage_backend", "exit 0")
        let system = try module(cli, "etc", "clone", "storage_backend", "exit 0")
        _ = try cli.scratch.write("vm/vm.settings", "vm_name=vm\n")
        func source() throws -> String? {
            let r = try cli.run("vminfo", ["-j", cli.scratch.url("vm")])
            let doc = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]]
            let clone = (doc?.first?["modules"] as? [String: Any])?["clone"] as? [[String: Any]]
            return clone?.first { $0["name"] as? String == "storage_backend" }?["file"] as? String
        }
        #expect(try source() == user)
        _ = try cli.scratch.write("etc/vmtools.conf", "cfg_include_userhome=no\n")
        #expect(try source() == system)
        try FileManager.default.removeItem(atPath: system)
        #expect(try source() == nil)  // the built-in
    }

    @Test(.requires("qemu-img")) func aCloneOverrideRunsForVmcp() throws {
        guard requireTool("qemu-img") != nil else { return }
        let cli = try lab()
        try module(cli, "xdg/vmtools", "clone", "networking_iface_mac", """
        echo "$VMTOOLS_ACTION from $VMTOOLS_SOURCE, keep=$VMTOOLS_KEEP_UNIQUE" > "$VMTOOLS_TARGET/made-by-module"
        echo "vm_networking_iface1_mac=52:54:00:12:34:56"
        """)
        #expect(try cli.run("vmcreate", ["-q", "-n", "-y", "-o", "vm_storage_hdd1_createsize=8M", "--", cli.scratch.url("src")]).status == 0)
        let r = try cli.run("vmcp", [cli.scratch.url("src"), cli.scratch.url("copy")])
        #expect(r.status == 0, "\(r.err)")
        #expect(try VMSettingsFile.read(cli.scratch.url("copy/vm.settings")).value("vm_networking_iface1_mac") == "52:54:00:12:34:56")
        #expect(try cli.scratch.read("copy/made-by-module") == "copy from \(cli.scratch.url("src")), keep=no\n")
    }

    /// A failing module aborts with its own message, and nothing it was
    /// part of is kept — not even what it wrote before failing.
    @Test(.requires("qemu-img")) func aFailingModuleAbortsCleanly() throws {
        guard requireTool("qemu-img") != nil else { return }
        let cli = try lab()
        #expect(try cli.run("vmcreate", ["-q", "-n", "-y", "-o", "vm_storage_hdd1_createsize=8M", "--", cli.scratch.url("src")]).status == 0)
        try module(cli, "etc", "clone", "c_fail", """
        echo half > "$VMTOOLS_TARGET/half-done"
        echo "c_fail: the license server is down" >&2
        exit 3
        """)
        let before = try FileManager.default.contentsOfDirectory(atPath: cli.scratch.url("src")).sorted()
        let r = try cli.run("vmfork", ["-m", "c_fail", cli.scratch.url("src"), cli.scratch.url("fork")])
        #expect(r.status == 1)
        #expect(r.err.contains("c_fail: the license server is down"))
        #expect(r.err.contains("module 'c_fail' failed (exit status 3)"))
        #expect(!FileManager.default.fileExists(atPath: cli.scratch.url("fork")))
        #expect(try FileManager.default.contentsOfDirectory(atPath: cli.scratch.url("src")).sorted() == before)  // no childs.lst
        #expect(try FileManager.default.contentsOfDirectory(atPath: cli.scratch.path).filter { $0.hasPrefix("vmtools-backup.") }.isEmpty)
        // The same for a buildcmd module: vmup stops before QEMU.
        try module(cli, "etc", "buildcmd", "c_fail", "exit 4")
        let up = try cli.run("vmup", ["-n", "-o", "vm_modules_buildcmd=c_fail", cli.scratch.url("src")])
        #expect(up.status == 1 && up.err.contains("module 'c_fail' failed (exit status 4)"), "\(up.err)")
        // A configure module: vmcreate leaves no VM behind.
        try module(cli, "etc", "configure/settings", "c_fail", "echo 'c_fail: no' >&2; exit 5")
        let create = try cli.run("vmcreate", ["-n", "-y", "-o", "cfg_modules_configure_settings=storage_hdd1_createsize c_fail",
                                              "-o", "vm_storage_hdd1_createsize=8M", "--", cli.scratch.url("new")])
        #expect(create.status == 1 && create.err.contains("module 'c_fail' failed (exit status 5)"), "\(create.err)")
        #expect(!FileManager.default.fileExists(atPath: cli.scratch.url("new")))
        // Output that is not NAME=VALUE is an error naming the file and line.
        try module(cli, "etc", "clone", "c_bad", "echo 'just words'")
        let bad = try cli.run("vmfork", ["-m", "c_bad", cli.scratch.url("src"), cli.scratch.url("fork")])
        #expect(bad.status == 1 && bad.err.contains("c_bad: output line 1: expected NAME=VALUE"), "\(bad.err)")
        #expect(!FileManager.default.fileExists(atPath: cli.scratch.url("fork")))
    }

    @Test func unsafeOrBrokenOverridesAreNeverRunSilently() throws {
        let cli = try lab()
        _ = try cli.scratch.write("vm/vm.settings", "vm_name=vm\nvm_display_type=none\n")
        // Writable by others: passed over with a warning, the built-in runs.
        try module(cli, "xdg/vmtools", "buildcmd", "name", "echo -name; echo hacked", mode: 0o777)
        var r = try cli.run("vmup", ["-n", "-v", cli.scratch.url("vm")])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("modules/buildcmd/name: ignored, the file is writable by group or others"))
        #expect(!r.out.contains("hacked"))
        // So is a file in a directory others can write to.
        try FileManager.default.removeItem(atPath: cli.scratch.url("xdg/vmtools/modules/buildcmd/name"))
        try module(cli, "xdg/vmtools", "buildcmd", "name", "echo -name; echo hacked")
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: cli.scratch.url("xdg/vmtools/modules/buildcmd"))
        r = try cli.run("vmup", ["-n", "-v", cli.scratch.url("vm")])
        #expect(r.err.contains("ignored, its directory \(cli.scratch.url("xdg/vmtools/modules/buildcmd")) is writable by group or others"))
        #expect(!r.out.contains("hacked"))
        let info = try cli.run("vminfo", ["-m", cli.scratch.url("vm")])
        #expect(info.out.contains("(ignored \(cli.scratch.url("xdg/vmtools/modules/buildcmd/name")): its directory"))
        // Not executable, or a shell module of the original: an error, not a silent skip.
        try module(cli, "etc", "buildcmd", "ram", "echo -m; echo 1G", mode: 0o644)
        r = try cli.run("vmup", ["-n", cli.scratch.url("vm")])
        #expect(r.status == 1 && r.err.contains("modules/buildcmd/ram: overrides the buildcmd module 'ram' but is not an executable file"))
        try FileManager.default.removeItem(atPath: cli.scratch.url("etc/modules/buildcmd/ram"))
        _ = try cli.scratch.write("etc/modules/buildcmd/cpu.inc.sh", "mod_buildcmd() { :; }\n")
        r = try cli.run("vmup", ["-n", cli.scratch.url("vm")])
        #expect(r.status == 1 && r.err.contains("cpu.inc.sh: a shell module of the original vmtools"))
        try FileManager.default.removeItem(atPath: cli.scratch.url("etc/modules/buildcmd/cpu.inc.sh"))
        // An unknown name is an error listing what exists.
        r = try cli.run("vmup", ["-n", "-o", "vm_modules_buildcmd=c_nowhere", cli.scratch.url("vm")])
        #expect(r.status == 1 && r.err.contains("module 'c_nowhere' not found"))
    }

    /// The shipped templates give the command lines they promise.
    @Test(.requires("qemu-img", "qemu-system-x86_64"), arguments: [
        ("legacy_pc", ["-machine pc", "if=ide,index=0", "e1000,", "-vga std"]),
        ("modern", ["-machine q35", "if=virtio,index=0", "virtio-net-pci,", "usb-tablet"]),
        ("modern headless", ["-machine q35", "-display none -vga none"]),
        ("macos", ["-cpu core2duo", "-m 4G", "-machine q35", "isa-applesmc,osk=ourhardworkbythesewordsguarded"]),
    ]) func shippedTemplatesBuildWhatTheyPromise(templates: String, expected: [String]) throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-system-x86_64") != nil else { return }
        let cli = try CLI(Scratch())
        try cli.scratch.mkdir("share/templates")
        for t in try FileManager.default.contentsOfDirectory(atPath: Repo.root + "/etc/templates") {
            try FileManager.default.copyItem(atPath: Repo.root + "/etc/templates/" + t, toPath: cli.scratch.url("share/templates/" + t))
        }
        // The disk lies outside the VM's tree: the system's configuration allows it (vm.settings(5), HOST PATHS).
        _ = try cli.scratch.write("etc/vmtools.conf", "vm_macos_osk='ourhardworkbythesewordsguarded'\ncfg_host_paths='\(cli.scratch.url("hdd.qcow2"))'\n")
        #expect(try Subprocess("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", cli.scratch.url("hdd.qcow2"), "8M"]).run().status == 0)
        _ = try cli.scratch.write("vm/vm.settings", """
        template \(templates)
        vm_name=vm
        vm_storage_hdd1_enable=yes
        vm_storage_hdd1_backend=\(cli.scratch.url("hdd.qcow2"))
        vm_networking_iface1_enable=yes
        vm_networking_iface1_mac='52:54:00:00:00:01'

        """)
        let r = try cli.run("vmup", ["-n", "-v", cli.scratch.url("vm")])
        #expect(r.status == 0, "\(r.err)")
        let argv = try #require(r.outLines.first { $0.contains("qemu-system") })
        for part in expected { #expect(argv.contains(part), "\(templates): no '\(part)' in \(argv)") }
    }
}
