import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands
#if canImport(Glibc)
import Glibc
#endif

/// vm.settings(5) HOST PATHS, raw QEMU syntax: `vm_qemu_params` and a raw
/// `-netdev` mode from a VM's own settings can open any host file or run a
/// host command, so they need the user's acceptance like outside host paths;
/// an image named on the command line does not accept the files it names.
@Suite struct RawQemuSettingsTests {
    /// A downloaded-style VM that hands the guest a scratch "secret" through
    /// `vm_qemu_params`.
    func driveVM(_ s: Scratch, name: String = "dl") throws -> (home: String, value: String) {
        try s.write("outside/secret", "secret\n")
        let value = "-drive file=\(s.url("outside/secret")),format=raw,if=virtio"
        try s.write("\(name)/vm.settings", "vm_qemu_params='\(value)'\nvm_cloudinit_enable=no\nvm_display_type=none\n")
        return (s.url(name), value)
    }

    /// A downloaded-style VM whose user-mode network runs a host command
    /// (QEMU's guestfwd=…-cmd:) that would create `marker`.
    func guestfwdVM(_ s: Scratch) throws -> (home: String, mode: String, marker: String) {
        let marker = s.url("outside/marker")
        try s.mkdir("outside")
        let mode = "user,guestfwd=tcp:10.0.2.100:80-cmd:/usr/bin/touch \(marker)"
        try s.write("gf/vm.settings", """
            vm_networking_iface1_enable=yes
            vm_networking_iface1_mode='\(mode)'
            vm_cloudinit_enable=no
            vm_display_type=none
            vm_ram_size=64M

            """)
        return (s.url("gf"), mode, marker)
    }

    @Test(.requires("qemu-system-x86_64")) func aDownloadedVMsQemuParamsAreRefusedByVmupAndVmupN() throws {
        let lab = try BootLab(config: nil)
        let s = lab.s, cli = lab.cli
        let (home, value) = try driveVM(s)
        for args in [["-n", home], [home]] {
            let r = try cli.run("vmup", args)
            #expect(r.status == 1, "\(r.err)")
            #expect(r.err.contains("vmup: ERROR: vm_qemu_params: '\(value)' (from \(home)/vm.settings:1) is raw QEMU syntax"), "\(r.err)")
            #expect(r.err.contains("give it with -o, or check the VM and accept it with 'vmfix -H \(home)'"), "\(r.err)")
            #expect(!r.err.contains("would pass raw QEMU syntax"))
        }
        #expect(!s.exists("dl/qemu.pid"))
        #expect(lab.leftovers().isEmpty)
    }

    /// A real start: if the rule broke, QEMU would run (exit 0, a QEMU with
    /// the scratch path in its argv), ready to run the command for a guest
    /// that connects to 10.0.2.100.
    @Test(.requires("qemu-system-x86_64")) func aDownloadedVMsGuestfwdCommandNeverRuns() throws {
        let lab = try BootLab(config: nil)
        let s = lab.s, cli = lab.cli
        let (home, mode, marker) = try guestfwdVM(s)
        let n = try cli.run("vmup", ["-n", home])
        #expect(n.status == 1, "\(n.err)")
        #expect(n.err.contains("vmup: ERROR: vm_networking_iface1_mode: '\(mode)' (from \(home)/vm.settings:2) is raw QEMU syntax"), "\(n.err)")
        let r = try #require(try cli.run("vmup", [home], environment: cli.environment, within: 60))
        #expect(r.status == 1, "\(r.err)")
        #expect(r.err.contains("vm_networking_iface1_mode: '\(mode)'"), "\(r.err)")
        #expect(lab.leftovers().isEmpty)
        #expect(!FileSystem.lexists(marker))
        #expect(!s.exists("gf/qemu.pid"))
    }

    @Test func theSameValuesGivenWithDashOAreTheUsersAndVmupNNamesThem() throws {
        let s = Scratch()
        let cli = try CLI(s)
        let (home, value) = try driveVM(s)
        let r = try cli.run("vmup", ["-n", "-o", "vm_qemu_params=\(value)", home])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("would pass raw QEMU syntax '\(value)' (vm_qemu_params, from command line (-o))"), "\(r.err)")
        let (gf, mode, marker) = try guestfwdVM(s)
        let m = try cli.run("vmup", ["-n", "-o", "vm_networking_iface1_mode=\(mode)", gf])
        #expect(m.status == 0, "\(m.err)")
        #expect(m.err.contains("would pass raw QEMU syntax '\(mode)' (vm_networking_iface1_mode, from command line (-o))"), "\(m.err)")
        #expect(!FileSystem.lexists(marker))
        // The user's configuration is the user's too: a raw default mode passes, and is named.
        try s.write("xdg/vmtools/vmtools.conf", "vm_networking_default_mode='user,restrict=on'\n")
        try s.write("plain/vm.settings", "vm_networking_iface1_enable=yes\nvm_cloudinit_enable=no\nvm_display_type=none\n")
        let d = try cli.run("vmup", ["-n", s.url("plain")])
        #expect(d.status == 0, "\(d.err)")
        #expect(d.err.contains("would pass raw QEMU syntax 'user,restrict=on' (vm_networking_default_mode, from \(s.url("xdg"))/vmtools/vmtools.conf:1)"), "\(d.err)")
        // A VM's own file cannot grant it through cfg_host_paths.
        let allow = try cli.run("vmup", ["-n", "-o", "cfg_host_paths=/", home])
        #expect(allow.status == 1, "\(allow.err)")
    }

    @Test func vmfixHPrintsTheRawValuesAndAcceptsThem() throws {
        let s = Scratch()
        let cli = try CLI(s)
        let (home, value) = try driveVM(s)
        let check = try cli.run("vmfix", ["-n", "-H", home])
        #expect(check.status == 3, "\(check.err)")
        #expect(check.err.contains("vmfix: WARNING: \(home)/vm.settings: passes QEMU raw syntax:"), "\(check.err)")
        #expect(check.err.contains("vm_qemu_params=\(value) (raw QEMU syntax: it can open host files and run host commands), from \(home)/vm.settings:1"), "\(check.err)")
        #expect(try cli.run("vmup", ["-n", home]).status == 1)
        let fix = try cli.run("vmfix", ["-H", home])
        #expect(fix.status == 3, "\(fix.err)")
        #expect(fix.err.contains("vmfix: SOLVED: \(home)/vm.settings: these host paths and raw QEMU values are accepted"), "\(fix.err)")
        let n = try cli.run("vmup", ["-n", home])
        #expect(n.status == 0, "\(n.err)")
        #expect(n.err.contains("would pass raw QEMU syntax '\(value)' (vm_qemu_params, from \(home)/vm.settings:1)"), "\(n.err)")
        // Another value is another set: refused until accepted again.
        try s.write("dl/vm.settings", try s.read("dl/vm.settings").replacingOccurrences(of: "if=virtio", with: "if=ide"))
        let changed = try cli.run("vmup", ["-n", home])
        #expect(changed.status == 1, "\(changed.err)")
        #expect(changed.err.contains("vm_qemu_params: '\(value.replacingOccurrences(of: "if=virtio", with: "if=ide"))'"), "\(changed.err)")
        // An acceptance covers the file's paths and raw values together.
        let (gf, mode, _) = try guestfwdVM(s)
        try s.write("gf/vm.settings", try s.read("gf/vm.settings") + "vm_share1_path=\(s.url("outside"))\n")
        let both = try cli.run("vmfix", ["-n", "-H", gf])
        #expect(both.err.contains("\(gf)/vm.settings: hands the guest host paths outside the VM's tree and passes QEMU raw syntax:"), "\(both.err)")
        #expect(both.err.contains("vm_networking_iface1_mode=\(mode) (raw QEMU syntax"), "\(both.err)")
        #expect(try cli.run("vmfix", ["-H", gf]).status == 3)
        #expect(try cli.run("vmup", ["-n", gf]).status == 0)
    }

    @Test func vmcreateRecordsTheRawValuesItsCommandLineGave() throws {
        let s = Scratch()
        let cli = try CLI(s)
        try s.write("outside/secret", "secret\n")
        let value = "-drive file=\(s.url("outside/secret")),format=raw,if=virtio"
        let mode = "user,restrict=on"
        let c = try cli.run("vmcreate", ["-n", "-o", "vm_qemu_params=\(value)", "-o", "vm_networking_iface1_mode=\(mode)",
                                         "-o", "vm_cloudinit_enable=no", "-o", "vm_display_type=none", s.url("web")])
        #expect(c.status == 0, "\(c.err)")
        #expect(try s.read("web/vm.settings").contains("vm_qemu_params="))
        let r = try cli.run("vmup", ["-n", s.url("web")])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("would pass raw QEMU syntax '\(value)' (vm_qemu_params, from \(s.url("web"))/vm.settings:"), "\(r.err)")
        #expect(r.err.contains("would pass raw QEMU syntax '\(mode)' (vm_networking_iface1_mode, from \(s.url("web"))/vm.settings:"), "\(r.err)")
        // A copy of an accepted VM is accepted too; one edited by hand is not.
        #expect(try cli.run("vmcp", [s.url("web"), s.url("copy")]).status == 0)
        #expect(try cli.run("vmup", ["-n", s.url("copy")]).status == 0)
        try s.write("copy/vm.settings", try s.read("copy/vm.settings").replacingOccurrences(of: "restrict=on", with: "smb=\(s.url("outside"))"))
        let edited = try cli.run("vmup", ["-n", s.url("copy")])
        #expect(edited.status == 1)
        #expect(edited.err.contains("vm_networking_iface1_mode: 'user,smb=\(s.url("outside"))'"), "\(edited.err)")
    }

    /// Which values count as raw: what reaches QEMU as written, for an
    /// interface that is used; named models and an empty list do not.
    @Test func theRawValuesAreThoseAStartPasses() {
        func raw(_ values: [String: String]) -> [String] {
            var t = SettingsTable()
            t.set("vm_networking_default_mode", "nat", .builtin)
            for (k, v) in values { t.set(k, v, .vmFile(path: "/vm/vm.settings", line: 1, depth: 0)) }
            return HostPaths.rawValues(t).map { "\($0.setting)=\($0.path)" }.sorted()
        }
        #expect(raw(["vm_qemu_params": "-chardev file,id=c,path=/etc/shadow"]) == ["vm_qemu_params=-chardev file,id=c,path=/etc/shadow"])
        #expect(raw(["vm_qemu_params": " "]).isEmpty)
        for named in ["nat", "user", "passt", "none", "bridge:br0", "tap:tap0"] {
            #expect(raw(["vm_networking_iface1_enable": "yes", "vm_networking_iface1_mode": named]).isEmpty, "\(named)")
        }
        #expect(raw(["vm_networking_iface1_enable": "yes", "vm_networking_iface1_mode": "user,tftp=/home"]) == ["vm_networking_iface1_mode=user,tftp=/home"])
        #expect(raw(["vm_networking_iface2_enable": "yes", "vm_networking_iface2_mode": "socket,listen=:1234"]) == ["vm_networking_iface2_mode=socket,listen=:1234"])
        // A disabled interface passes nothing; interface 1 unset may be added by networking_auto.
        #expect(raw(["vm_networking_iface2_enable": "no", "vm_networking_iface2_mode": "user,smb=/home"]).isEmpty)
        #expect(raw(["vm_networking_default_mode": "user,smb=/home"]) == ["vm_networking_default_mode=user,smb=/home"])
        #expect(raw(["vm_networking_iface1_enable": "no", "vm_networking_default_mode": "user,smb=/home"]).isEmpty)
        // The default mode counts once, under its own name, for every interface that takes it.
        #expect(raw(["vm_networking_iface1_enable": "yes", "vm_networking_iface2_enable": "yes", "vm_networking_default_mode": "user,smb=/home"])
                == ["vm_networking_default_mode=user,smb=/home"])
    }

    @Test(.requires("qemu-img", "qemu-system-x86_64")) func aBareBootImagesDataFileNeedsCfgHostPaths() throws {
        let lab = try BootLab(config: nil)
        let s = lab.s, cli = lab.cli
        try s.write("outside/secret", "secret\n")
        try s.mkdir("images")
        let image = s.url("images/x.qcow2")
        let made = try Subprocess("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", "-o", "data_file=\(s.url("outside/secret")),data_file_raw=on", image, "1M"]).run()
        try #require(made.status == 0, "\(made.stderrText)")
        try s.write("outside/secret", "secret\n")
        try s.write("vm/vm.settings", "vm_cloudinit_enable=no\nvm_display_type=none\n")
        for args in [["-n", image], [image], ["-n", "-c", image, s.url("vm")]] {
            let r = try #require(try cli.run("vmup", args, environment: cli.environment, within: 60))
            #expect(r.status == 1, "\(args): \(r.err)")
            #expect(r.err.contains("vmup: ERROR: \(image): its data file '\(s.url("outside/secret"))' would reach the guest"), "\(r.err)")
            #expect(r.err.contains("-o cfg_host_paths=DIR"), "\(r.err)")
        }
        #expect(lab.leftovers().isEmpty)
        #expect(try s.read("outside/secret") == "secret\n")
        // vmcreate would accept what the new file hands out: the same rule first, and no home is left.
        let create = try cli.run("vmcreate", ["-n", "-y", "-c", image, s.url("new")])
        #expect(create.status == 1 && create.err.contains("vmcreate: ERROR: \(image): its data file '\(s.url("outside/secret"))'"), "\(create.err)")
        #expect(!s.exists("new"))
        let created = try cli.run("vmcreate", ["-n", "-y", "-o", "cfg_host_paths=\(s.url("outside"))", "-o", "vm_cloudinit_enable=no", "-c", image, s.url("new")])
        #expect(created.status == 0, "\(created.err)")
        #expect(try cli.run("vmup", ["-n", s.url("new")]).status == 0)
        let ok = try cli.run("vmup", ["-n", "-o", "cfg_host_paths=\(s.url("outside"))", image])
        #expect(ok.status == 0, "\(ok.err)")
        #expect(ok.err.contains("would hand the guest \(s.url("outside/secret")) (vm_storage_hdd1_backend: data file of \(image), read-write, from command line (vmup FILE))"), "\(ok.err)")
        // A backing file beside the image is the image's own.
        let base = try Subprocess("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", s.url("images/base.qcow2"), "1M"]).run()
        let over = try Subprocess("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", s.url("images/over.qcow2")]).run()
        try #require(base.status == 0 && over.status == 0)
        let beside = try cli.run("vmup", ["-n", s.url("images/over.qcow2")])
        #expect(beside.status == 0, "\(beside.err)")
        // One outside it is not.
        try s.mkdir("other")
        let far = try Subprocess("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", "-b", s.url("images/base.qcow2"), "-F", "qcow2", s.url("other/elsewhere.qcow2")]).run()
        try #require(far.status == 0)
        let refused = try cli.run("vmup", ["-n", s.url("other/elsewhere.qcow2")])
        #expect(refused.status == 1)
        #expect(refused.err.contains("\(s.url("other/elsewhere.qcow2")): its backing file '\(s.url("images/base.qcow2"))' would reach the guest"), "\(refused.err)")
    }
}
