import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// Shared folders (`vm_shareN_*`): the 9p arguments, the errors, the
/// cloud-init `mounts:` and vminfo's mount command, without booting.
@Suite struct ShareTests {
    func fsdevs(_ argv: [String]) -> [String] {
        argv.indices.filter { argv[$0] == "-fsdev" || (argv[$0] == "-device" && argv[$0 + 1].hasPrefix("virtio-9p")) }
            .flatMap { [argv[$0], argv[$0 + 1]] }
    }

    @Test func aReadWriteAndAReadOnlyShareAreVirtio9pDevices() throws {
        let s = Scratch()
        try s.mkdir("data")
        try s.mkdir("docs,v1")
        let c = try BuildCmdTests().command(s, ["vm_share1_path": s.url("data"), "vm_share2_path": s.url("docs,v1"), "vm_share2_mode": "ro",
                                                "vm_share2_tag": "docs", "vm_share2_transport": "9p"])
        #expect(fsdevs(c.argv) == [
            "-fsdev", "local,id=vmtools-share1,path=\(s.url("data")),security_model=mapped-xattr",
            "-device", "virtio-9p-pci,fsdev=vmtools-share1,mount_tag=data",
            "-fsdev", "local,id=vmtools-share2,path=\(s.url("docs,,v1")),security_model=none,readonly=on",
            "-device", "virtio-9p-pci,fsdev=vmtools-share2,mount_tag=docs",
        ])
        // auto says why it is 9p; an explicit 9p says nothing.
        #expect(c.notices.filter { $0.contains("9p") }.count == 1)
        #expect(c.notices.contains { $0.hasPrefix("vm_share1: 9p, not virtiofs (") })
        // No share, no device.
        #expect(fsdevs(try BuildCmdTests().args(Scratch(), [:])).isEmpty)
    }

    @Test func theDefaultTagIsTheDirectorysNameWhenItIsATagElseShareN() throws {
        let s = Scratch()
        try s.mkdir("my folder")
        try s.mkdir("vm")
        try s.mkdir("vm/src")
        let argv = try BuildCmdTests().args(s, ["vm_share3_path": s.url("my folder"), "vm_share1_path": "src"], home: s.url("vm"))
        #expect(argv.filter { $0.hasPrefix("virtio-9p-pci") } == ["virtio-9p-pci,fsdev=vmtools-share1,mount_tag=src",
                                                                 "virtio-9p-pci,fsdev=vmtools-share3,mount_tag=share3"])
        #expect(argv.contains("local,id=vmtools-share1,path=\(s.url("vm/src")),security_model=mapped-xattr"), "relative to the home")
    }

    @Test func badValuesNameTheSetting() throws {
        let s = Scratch()
        try s.mkdir("data")
        func error(_ values: [String: String]) -> String {
            expectError { _ = try BuildCmdTests().command(s, values) }?.description ?? "no error"
        }
        #expect(error(["vm_share1_path": s.url("nowhere")]) == "vm_share1_path: '\(s.url("nowhere"))' (from command line (-o)): no directory at \(s.url("nowhere"))")
        #expect(error(["vm_share1_path": s.url("data"), "vm_share1_mode": "rx"]) == "vm_share1_mode: 'rx' (from command line (-o)): expected ro or rw")
        #expect(error(["vm_share1_path": s.url("data"), "vm_share1_transport": "nfs"])
            == "vm_share1_transport: 'nfs' (from command line (-o)): expected auto, 9p or virtiofs")
        #expect(error(["vm_share1_path": s.url("data"), "vm_share1_tag": "a b"]) == "vm_share1_tag: 'a b' (from command line (-o)): a mount tag is 1 to 31 letters, digits, _, - or .")
        #expect(error(["vm_share2_tag": "x"]) == "vm_share2_tag: 'x' (from command line (-o)): a share needs a host directory (vm_share2_path is empty)")
        #expect(error(["vm_share1_path": s.url("data"), "vm_share2_path": s.url("data")]).hasPrefix("vm_share2_path: "))
        #expect(error(["vm_share1_path": s.url("data"), "vm_share2_path": s.url("data")]).hasSuffix("the mount tag 'data' is already vm_share1's; set vm_share2_tag"))
        #expect(error(["vm_share1_path": s.url("data"), "vm_share1_transport": "virtiofs"]).hasPrefix("vm_share1_transport: 'virtiofs' (from command line (-o)): virtiofs needs a virtiofsd running as you"))
    }

    /// A mode or transport left without its path is a share half-made, not
    /// ignored; the same line in a vmtools.conf is a default for every VM.
    @Test func aModeOrTransportWithoutAPathIsAnError() throws {
        let s = Scratch()
        func error(_ values: [String: String]) -> String {
            expectError { _ = try BuildCmdTests().command(s, values) }?.description ?? "no error"
        }
        #expect(error(["vm_share2_mode": "ro"]) == "vm_share2_mode: 'ro' (from command line (-o)): a share needs a host directory (vm_share2_path is empty)")
        #expect(error(["vm_share3_transport": "9p"])
            == "vm_share3_transport: '9p' (from command line (-o)): a share needs a host directory (vm_share3_path is empty)")
        // The built-in vm_share1_mode=rw and vm_share1_transport=auto are no share.
        #expect(fsdevs(try BuildCmdTests().args(s, [:])).isEmpty)

        var table = try resolver(s).loadGlobal().settings
        table.set("vm_share2_mode", "ro", .config(layer: .user, path: s.url("home/.vmtools.conf"), line: 3))
        #expect(try VMSettings(table).shares(home: nil, environment: [:]).isEmpty)
        table.set("vm_share2_mode", "ro", .vmFile(path: s.url("vm/vm.settings"), line: 2, depth: 0))
        let e = expectError { _ = try VMSettings(table).shares(home: nil, environment: [:]) }
        #expect(e?.description == "vm_share2_mode: 'ro' (from \(s.url("vm/vm.settings")):2): a share needs a host directory (vm_share2_path is empty)")

        // From a VM's own file: vmup refuses to start, in one line.
        try s.write("vm/vm.settings", "vm_share1_transport='9p'\n")
        let up = try CLI(s).run("vmup", ["-n", s.url("vm")])
        #expect(up.status != 0)
        #expect(up.err == "vmup: ERROR: vm_share1_transport: '9p' (from \(s.url("vm/vm.settings")):1): a share needs a host directory (vm_share1_path is empty)\n",
                "\(up.err)")
    }

    @Test func cloudInitMountsEveryShare() throws {
        let s = Scratch()
        try s.mkdir("data")
        try s.mkdir("docs")
        let c = try CloudInitTests().plan(s, ["vm_cloudinit_sshkey": CloudInitTests.key, "vm_share1_path": s.url("data"),
                                              "vm_share2_path": s.url("docs"), "vm_share2_mode": "ro"])
        let userData = try #require(c.plan.seedVolumes.first?.files.first { $0.name == "user-data" }?.content)
        #expect(userData.hasSuffix("""
            bootcmd:
              - ["sh", "-c", "grep -q '^data ' /etc/fstab || echo 'data /mnt/data 9p trans=virtio,version=9p2000.L,nofail 0 0' >> /etc/fstab; mkdir -p /mnt/data; mount /mnt/data || true"]
              - ["sh", "-c", "grep -q '^docs ' /etc/fstab || echo 'docs /mnt/docs 9p trans=virtio,version=9p2000.L,ro,nofail 0 0' >> /etc/fstab; mkdir -p /mnt/docs; mount /mnt/docs || true"]

            """), "\(userData)")
        let none = try CloudInitTests().plan(Scratch(), ["vm_cloudinit_sshkey": CloudInitTests.key])
        #expect(none.plan.seedVolumes.first?.files.first { $0.name == "user-data" }?.content.contains("bootcmd:") == false)
    }

    @Test func shareSettingsAreKnownOnTheCommandLine() {
        #expect(SettingName.isShareSetting("vm_share12_transport") && SettingName.isShareSetting("vm_share1_path"))
        #expect(!SettingName.isShareSetting("vm_share_path") && !SettingName.isShareSetting("vm_share1_paths"))
    }

    /// vminfo(1)'s `Share:` lines, for a stopped VM.
    @Test func vminfoPrintsEachShareAndItsMountCommand() throws {
        let s = Scratch()
        try s.mkdir("vm")
        try s.mkdir("data")
        _ = try s.write("vm/vm.settings", "vm_share1_path='\(s.url("data"))'\nvm_share2_path='\(s.url("data"))'\nvm_share2_tag='logs'\nvm_share2_mode='ro'\n")
        let r = try CLI(s).run("vminfo", [s.url("vm")])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("Share: data \(s.url("data")) (rw): mkdir -p /mnt/data && mount -t 9p -o trans=virtio,version=9p2000.L data /mnt/data\n"), "\(r.out)")
        #expect(r.out.contains("Share: logs \(s.url("data")) (ro): mkdir -p /mnt/logs && mount -t 9p -o trans=virtio,version=9p2000.L,ro logs /mnt/logs\n"), "\(r.out)")
        _ = try s.write("vm/vm.settings", "vm_share1_path='\(s.url("gone"))'\n")
        let bad = try CLI(s).run("vminfo", [s.url("vm")])
        #expect(bad.out.contains("Share: ? (vm_share1_path: '\(s.url("gone"))' (from "), "\(bad.out)")
    }
}
