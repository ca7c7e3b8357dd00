import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch

/// Every `vm_*` setting of the defaults, given a value other than its
/// default, is either carried or noted by name by each export (`vminfo -L`,
/// `vmcp -a`), never dropped (issue 23). A new setting fails here until it
/// has a value below and the exports know it.
@Suite struct ExportCoverageTests {
    /// Not a setting a VM sets: where its home is.
    static let notSettable: Set<String> = [SettingKey.home]

    /// A VM home with every default `vm_*` setting changed, and the files they name.
    static func home(_ s: Scratch) throws -> (home: String, values: [String: String]) {
        try s.mkdir("cover")
        for (disk, size) in [("cover/disk1.qcow2", "16M"), ("cover/disk2.qcow2", "16M")] {
            let r = try Subprocess("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", s.url(disk), size]).run()
            try #require(r.status == 0, "\(r.stderrText)")
        }
        try s.mkdir("share")
        let file = { (name: String, text: String) in try s.write("cover/" + name, text) }
        let values: [String: String] = [
            SettingKey.name: "cover",
            SettingKey.bootOrder: "dc", SettingKey.bootMenu: "yes",
            SettingKey.bootKernel: try file("vmlinuz", "kernel"), SettingKey.bootInitrd: try file("initrd", "initrd"),
            SettingKey.bootAppend: "console=ttyS0",
            SettingKey.cloudInitEnable: "yes", SettingKey.cloudInitHostname: "host", SettingKey.cloudInitInstanceID: "i-1",
            SettingKey.cloudInitNetworkConfig: try file("network-config", "version: 2\n"),
            SettingKey.cloudInitSSHKey: try file("id.pub", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGVYHf5TTYxkQeT2nB1t5bEI6s4rMt5cNo8xCZpQn0tW t@h\n"),
            SettingKey.cloudInitUser: "alice", SettingKey.cloudInitUserData: try file("user-data", "#cloud-config\n"),
            SettingKey.cpuCount: "3", SettingKey.cpuType: "qemu64",
            SettingKey.displayClipboard: "yes", SettingKey.displayDevice: "virtio", SettingKey.displayFullscreen: "yes",
            SettingKey.displayIface: "127.0.0.2", SettingKey.displayPassword: try file("pw", "secret"), SettingKey.displayPort: "5917",
            SettingKey.displayPortMin: "5910", SettingKey.displayType: "vnc",
            SettingKey.firmware: "uefi", SettingKey.guestAgentEnable: "yes",
            SettingKey.installKickstart: try file("ks.cfg", "text\n"), SettingKey.installPreseed: try file("preseed.cfg", "d-i x\n"),
            SettingKey.keyboardMapping: "de", SettingKey.macosOSK: "ourhardwork", SettingKey.modulesBuildcmd: "macos",
            SettingKey.defaultNICDevice: "virtio-net-pci", SettingKey.defaultMAC: "52:54:01", SettingKey.defaultNICMode: "passt",
            SettingKey.qemuAccel: "tcg", SettingKey.qemuArch: "i386", SettingKey.qemuCompress: "yes", SettingKey.qemuDaemonize: "no",
            SettingKey.qemuParams: "-rtc base=localtime", SettingKey.qemuShutdownTimeout: "40",
            SettingKey.ramSize: "1G", SettingKey.serialLog: "yes", SettingKey.snapshotAuto: "merge grow",
            SettingKey.share("1").mode: "ro", SettingKey.share("1").path: s.url("share"), SettingKey.share("1").tag: "data",
            SettingKey.share("1").transport: "9p",
            SettingKey.cdrom(1).backend: try file("a.iso", String(repeating: "\0", count: 2048)), SettingKey.cdrom(1).enable: "yes",
            SettingKey.cdrom(2).backend: try file("b.iso", String(repeating: "\0", count: 2048)), SettingKey.cdrom(2).enable: "yes",
            SettingKey.hdd(1).backend: "disk1.qcow2", SettingKey.hdd(1).createsize: "1G", SettingKey.hdd(1).enable: "yes",
            SettingKey.hdd(1).preallocation: "full", SettingKey.hdd(1).size: "32M",
            SettingKey.hdd(2).backend: "disk2.qcow2", SettingKey.hdd(2).createsize: "1G", SettingKey.hdd(2).enable: "yes",
            SettingKey.hdd(2).preallocation: "metadata", SettingKey.hdd(2).size: "32M",
            SettingKey.hddInterface: "virtio", SettingKey.rwMode: "snap",
            SettingKey.imageName: "debian-12", SettingKey.imageURL: "https://cloud.debian.org/debian-12.qcow2",
            SettingKey.imageDigest: "sha256:" + String(repeating: "ab", count: 32),
            SettingKey.usbDevice("1"): "046d:c52b", SettingKey.tpm: "2.0", SettingKey.uuid: "0f8fad5b-d9cb-469f-a165-70867728950e",
        ]
        // The preseed file comes over a user-mode interface's TFTP.
        let nic = [SettingKey.nic("1").enable: "yes", SettingKey.nic("1").mode: "user"]
        let lines = (values.merging(nic) { a, _ in a }).sorted { $0.key < $1.key }.map { "\($0.key)=\(shellQuote($0.value))" }
        return (try s.write("cover/vm.settings", lines.joined(separator: "\n") + "\n").deletingLastPathComponent, values)
    }

    @Test(.requires("qemu-img", "qemu-system-x86_64")) func everySettingIsCarriedOrNotedByEachExport() throws {
        guard requireTool("qemu-img") != nil else { return }
        let s = Scratch()
        let (home, values) = try Self.home(s)
        let defaults = Defaults.values.filter { $0.name.hasPrefix("vm_") && !Self.notSettable.contains($0.name) }
        for (name, value) in defaults {
            #expect(values[name] != nil && values[name] != value, "\(name): give it a non-default value here, and make both exports carry or note it")
        }
        let environment = ["PATH": "/usr/bin:/bin", "HOME": s.url("")]
        let global = try resolver(s).loadGlobal()
        let vm = try resolver(s).loadVM(home: home, global: global)
        for (name, value) in values { #expect(vm.settings.value(name) == value, "\(name) was not read back as set") }

        let domain = try LibvirtDomain(vm, accelerator: .tcg, global: global, environment: environment)
        #expect(domain.leftOver.isEmpty, "settings libvirt's export does not know: \(domain.leftOver)")
        let stream = OutputStream(fd: open("/dev/null", O_WRONLY))
        let ovf = OVFExporter(global: global, resolver: resolver(s), environment: environment,
                              console: Console(command: "test", out: stream, err: stream))
        let planned = try ExportPlan.machine(vm, accelerator: .tcg, global: global, environment: environment)
        let description = try ovf.describe(planned.machine, settings: VMSettings(vm.settings), name: "cover", base: "cover", skipped: planned.notes)
        for (name, _) in defaults {
            let libvirt = domain.carried.contains(name) || domain.notes.contains { $0.hasPrefix("\(name): not expressible in libvirt: ") }
            #expect(libvirt, "vminfo -L neither expresses nor notes \(name)")
            let ovfKnows = description.carried.contains(name) || description.notices.contains { $0.hasPrefix("\(name)='") || $0.hasPrefix("\(name): ") }
            #expect(ovfKnows, "vmcp -a neither carries nor notes \(name)")
        }
        // Named, not dropped: the unattended-install files the issue found missing.
        for name in [SettingKey.installKickstart, SettingKey.installPreseed] {
            #expect(domain.notes.contains { $0.hasPrefix("\(name): ") } && domain.xml.contains("<!-- \(name): "), "\(domain.xml)")
        }
    }
}
