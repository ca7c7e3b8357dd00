import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch

/// No setting that is not documented as raw QEMU syntax can add a QEMU
/// option key or an argument (issue 22): every `vm_` setting of the defaults
/// table (and an interface's own), set to a hostile value, either plans the
/// same argv shape as a plain value, key for key, or is refused in one line
/// naming the setting.
@Suite struct ArgvInjectionTests {
    /// Documented as raw QEMU (or kernel) syntax, or not read from files:
    /// `vm_qemu_params` (extra arguments), `vm_boot_append` (the kernel's
    /// command line, one whole argument), `vm_networking_*_mode` (a
    /// `-netdev` value passed as written: vmtools.conf(5)), `vm_home` (set by vmtools).
    static let raw: Set<String> = [SettingKey.qemuParams, SettingKey.bootAppend, SettingKey.defaultNICMode,
                                   SettingKey.nic("1").mode, SettingKey.home]

    /// Arguments QEMU takes whole (a file, a keymap, a UUID, a card name):
    /// no option syntax to inject into, only their count matters.
    static let wholeArguments: Set<String> = ["-kernel", "-initrd", "-append", "-pidfile", "-k", "-uuid", "-vga", "-usbdevice"]

    static let hostile = ["x,romfile=/etc/hostname", "x=y", ",id=z"]

    /// Every setting name to try: the defaults' `vm_` names and interface 1's
    /// (`cfg_` names come only from the user's and the system's
    /// configuration: a VM's file cannot set them).
    static var names: [String] {
        let nic = SettingKey.nic("1")
        let all = Defaults.values.map(\.name).filter { $0.hasPrefix("vm_") } + [nic.enable, nic.device, nic.mac, nic.mode, nic.forward]
        return all.filter { !raw.contains($0) }
    }

    /// The keys of a QEMU option value: what precedes `=` in each part
    /// between single commas (`,,` is a literal comma); "" for an implied key.
    static func keys(_ value: String) -> [String] {
        QemuProcess.splitOptions(value).map { part in part.firstIndex(of: "=").map { String(part[..<$0]) } ?? "" }
    }

    /// Each argument's shape: an option name, the keys of an option value,
    /// or "whole" for an argument QEMU takes as it is.
    static func shape(_ argv: [String]) -> [String] {
        argv.enumerated().map { i, a in
            if i == 0 { return "binary" }
            if a.hasPrefix("-") && !a.contains(",") && !a.contains("=") { return a }
            if wholeArguments.contains(argv[i - 1]) { return "whole" }
            return keys(a).joined(separator: "|")
        }
    }

    /// A VM home where every built-in module reads its settings: a disk, a
    /// CD-ROM, a NIC with a forward, a share, VNC, cloud-init, the macos module.
    func base(_ s: Scratch) throws -> [String: String] {
        try s.mkdir("vm/share")
        try s.writeBytes("vm/hdd.qcow2", [0x51, 0x46, 0x49, 0xFB, 0, 0, 0, 3])
        try s.writeBytes("vm/cd.iso", [UInt8](repeating: 0, count: 0x8001) + Array("CD001".utf8))
        return ["vm_name": "vm", "vm_storage_hdd1_enable": "yes", "vm_storage_hdd1_backend": "hdd.qcow2",
                "vm_storage_cdrom1_enable": "yes", "vm_storage_cdrom1_backend": "cd.iso",
                "vm_networking_iface1_enable": "yes", "vm_networking_iface1_mac": "52:54:00:29:a7:c7",
                "vm_networking_iface1_device": "virtio-net-pci", "vm_networking_iface1_forward": "tcp:8080:80",
                "vm_share1_path": "share", "vm_display_type": "vnc", "vm_display_iface": "127.0.0.1", "vm_keyboard_mapping": "fr",
                "vm_cloudinit_enable": "yes", "vm_cloudinit_sshkey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f t",
                "vm_modules_buildcmd": "macos", "vm_macos_osk": "key", "vm_uuid": "0f8fad5b-d9cb-469f-a165-70867728950e"]
    }

    enum Outcome {
        case argv([String])
        case refused(VMToolsError)
    }

    func plan(_ s: Scratch, _ values: [String: String]) throws -> Outcome {
        do {
            return .argv(try BuildCmdTests().command(s, values, home: s.url("vm"), runDirectory: s.url("vm")).argv)
        } catch let e as VMToolsError {
            return .refused(e)
        }
    }

    @Test func theBaseVMPlansWithEveryModuleAtWork() throws {
        let s = Scratch()
        guard case .argv(let argv) = try plan(s, try base(s)) else {
            Issue.record("the base VM does not plan")
            return
        }
        for needle in ["-fsdev", "-k", "-uuid", "-cpu", "-name"] { #expect(argv.contains(needle), "\(needle)") }
        #expect(argv.contains { $0.hasPrefix("isa-applesmc,osk=") } && argv.contains { $0.hasPrefix("virtio-net-pci,") })
    }

    @Test func noSettingAddsAnOptionKeyOrAnArgument() throws {
        let s = Scratch()
        let base = try base(s)
        #expect(Self.names.count > 60)
        for name in Self.names {
            let plain = try plan(s, base.merging([name: "x"]) { $1 })
            for value in Self.hostile {
                switch try plan(s, base.merging([name: value]) { $1 }) {
                case .refused(let e):
                    #expect(!e.description.contains("\n"), "\(name)=\(value): \(e.description)")
                    // Refused for its own value: the setting is named (a plain value may fail too, for its own reason).
                    if case .argv = plain {
                        #expect(e.subject == name || e.description.contains(name), "\(name)=\(value): \(e.description)")
                    }
                case .argv(let argv):
                    guard case .argv(let plainArgv) = plain else {
                        Issue.record("\(name)=\(value) plans where \(name)=x is refused")
                        continue
                    }
                    #expect(Self.shape(argv) == Self.shape(plainArgv), "\(name)=\(value): \(argv)")
                    #expect(!argv.contains { Self.keys($0).contains("romfile") || $0 == "-id" }, "\(name)=\(value)")
                }
            }
        }
    }

    /// The examples of the issue, by name: each is refused or made harmless.
    @Test func theReportedExamples() throws {
        let s = Scratch()
        let base = try base(s)
        guard case .refused(let e) = try plan(s, base.merging(["vm_networking_iface1_device": "e1000,romfile=/etc/hostname"]) { $1 }) else {
            Issue.record("a NIC model with options is planned")
            return
        }
        #expect(e.subject == "vm_networking_iface1_device")
        for name in ["process=evil", "x=y", "a,process=b"] {
            guard case .argv(let argv) = try plan(s, base.merging(["vm_name": name]) { $1 }) else {
                Issue.record("vm_name=\(name) is refused")
                continue
            }
            let value = try #require(argv.firstIndex(of: "-name").map { argv[$0 + 1] })
            #expect(Self.keys(value) == ["guest"], "\(value)")
            #expect(QemuProcess(pid: 1, uid: 0, argv: argv, vszKB: 0, cpuPercent: 0).name == name)
        }
    }
}
