import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

extension Trait where Self == ConditionTrait {
    /// Debian's ovmf: its descriptors and images (skipped without it, failed in CI).
    static var requiresOVMF: Self {
        .enabled(if: FirmwareBootTests.ovmfMissing == nil || Tools.ci,
                 Comment(rawValue: "needs \(FirmwareBootTests.ovmfMissing ?? "ovmf"), which is not installed (apt-get install ovmf)"))
    }
}

/// The test guest under each firmware (vm.settings(5), FIRMWARE), with the
/// host's OVMF: what the guest sees, a UEFI variable that outlives a
/// restart, and Secure Boot refusing an unsigned EFI binary.
@Suite(.serialized) struct FirmwareBootTests {
    static let ovmfFiles = ["/usr/share/qemu/firmware/40-edk2-x86_64-secure-enrolled.json", "/usr/share/qemu/firmware/60-edk2-x86_64.json",
                            "/usr/share/OVMF/OVMF_CODE_4M.ms.fd", "/usr/share/OVMF/OVMF_VARS_4M.ms.fd",
                            "/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"]
    static var ovmfMissing: String? { ovmfFiles.first { !FileManager.default.fileExists(atPath: $0) } }

    func ovmf() -> Bool {
        guard let missing = Self.ovmfMissing else { return true }
        Issue.record("\(missing) is missing, and CI must run this test (apt-get install ovmf)")
        return false
    }

    func serialLines(_ lab: BootLab, _ home: String) -> [String] {
        // OVMF ends its lines with CR LF: one Character, a newline.
        lab.serial(home).split(whereSeparator: \.isNewline).map(String.init)
    }

    /// OVMF faults in 128M (the Lab's default): UEFI VMs get 256M.
    /// Direct kernel boot: UEFI gives the guest /sys/firmware/efi, a variable
    /// written on one start is read on the next (the store is in the home),
    /// and BIOS gives no EFI.
    @Test(.requiresGuest, .requiresOVMF) func theGuestSeesItsFirmwareAndKeepsAVariable() throws {
        guard ovmf(), let lab = try BootLab.guest() else { return }
        let home = try lab.makeVM("efi", """
        vm_firmware=uefi
        vm_ram_size=256M
        vm_boot_kernel=\(Guest.directory)/vmlinuz
        vm_boot_initrd=\(Guest.directory)/initrd.gz
        vm_boot_append='console=ttyS0 panic=-1 loglevel=3'
        """)
        let first = try lab.up(home, command: "efiwrite fw hello-\(getpid())")
        try #require(first.status == 0, "\(first.err)")
        #expect(first.err.contains("NOTICE: created \(home)/firmware-vars.qcow2 (UEFI variables from /usr/share/OVMF/OVMF_VARS_4M.fd)"), "\(first.err)")
        #expect(lab.readyOrDump(home), "\(lab.serial(home))")
        #expect(lab.serial(home).contains("VMTOOLS-GUEST: FIRMWARE uefi"), "\(lab.serial(home))")
        #expect(lab.serial(home).contains("VMTOOLS-GUEST: EFIWROTE fw"), "\(lab.serial(home))")
        let ps = try lab.cli.run("vmps", ["-j", "-d", home])
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(ps.out.utf8)) as? [[String: Any]])
        #expect(doc.first?["firmware"] as? String == "uefi", "\(ps.out)")
        let store = try #require(FileManager.default.contents(atPath: home + "/firmware-vars.qcow2"))
        #expect(Array(store.prefix(4)) == [0x51, 0x46, 0x49, 0xFB], "the store is qcow2")
        var down = try lab.down(home)
        #expect(down.status == 0, "\(down.err)")

        let second = try lab.up(home, command: "efiread fw")
        try #require(second.status == 0, "\(second.err)")
        #expect(!second.err.contains("created"), "the store is made once: \(second.err)")
        #expect(lab.readyOrDump(home), "\(lab.serial(home))")
        #expect(lab.serial(home).contains("VMTOOLS-GUEST: EFIVAR fw hello-\(getpid())"), "\(lab.serial(home))")
        down = try lab.down(home)
        #expect(down.status == 0, "\(down.err)")

        let bios = try lab.up(home, ["-o", "vm_firmware=bios"])
        try #require(bios.status == 0, "\(bios.err)")
        #expect(lab.readyOrDump(home), "\(lab.serial(home))")
        #expect(lab.serial(home).contains("VMTOOLS-GUEST: FIRMWARE bios"), "\(lab.serial(home))")
        let biosPS = try lab.cli.run("vmps", ["-j", "-d", home])
        let biosDoc = try #require(try JSONSerialization.jsonObject(with: Data(biosPS.out.utf8)) as? [[String: Any]])
        #expect(biosDoc.first?["firmware"] as? String == "bios", "\(biosPS.out)")
        down = try lab.down(home)
        #expect(down.status == 0, "\(down.err)")
    }

    /// The unsigned unified kernel image on the ESP of Guest.uefiDisk: plain
    /// UEFI starts it; under uefi-secure OVMF refuses it and the guest never runs.
    @Test(.requiresGuest, .requiresOVMF) func secureBootRefusesAnUnsignedEFIBinary() throws {
        guard ovmf(), let lab = try BootLab.guest() else { return }
        for name in ["open", "secure"] {
            try lab.s.write("\(name)/vm.settings", """
            vm_name=\(name)
            vm_firmware=\(name == "open" ? "uefi" : "uefi-secure")
            vm_boot_order=c
            vm_ram_size=256M
            vm_storage_hdd1_enable=yes
            vm_storage_hdd1_backend=hdd.qcow2
            """)
            let r = try Subprocess("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", "-b", Guest.uefiDisk, "-F", "qcow2",
                                                          lab.s.url("\(name)/hdd.qcow2")]).run()
            try #require(r.status == 0, "\(r.stderrText)")
        }
        let open = lab.s.url("open"), secure = lab.s.url("secure")

        let up = try lab.up(open)
        try #require(up.status == 0, "\(up.err)")
        #expect(lab.readyOrDump(open), "\(lab.serial(open))")
        #expect(lab.serial(open).contains("VMTOOLS-GUEST: FIRMWARE uefi"))
        #expect(try lab.down(open).status == 0)

        let refused = try lab.up(secure)
        try #require(refused.status == 0, "\(refused.err)")
        defer { _ = try? lab.cli.run("vmdown", ["-k", secure]) }
        // OVMF's boot manager names the disk it would not load, then gives up.
        let denied = waitUntil(120) {
            serialLines(lab, secure).contains { $0.contains("failed to load") && $0.contains("HARDDISK") && $0.hasSuffix(": Access Denied") }
                && lab.serial(secure).contains("No bootable option or device was found")
        }
        #expect(denied, "\(lab.serial(secure))")
        #expect(!lab.serial(secure).contains("VMTOOLS-GUEST"), "the unsigned kernel ran: \(lab.serial(secure))")
        #expect(try lab.cli.run("vmdown", ["-k", secure]).status == 0)
    }

    /// Guest.uefiDisk as the autodetect and Secure Boot tests need it: a
    /// protective MBR without boot code, a GPT whose one partition is an ESP.
    @Test(.requiresGuest) func theUEFIDiskHasAnESPAndNoBIOSBootCode() throws {
        guard Guest.build() != nil else { return }
        let s = Scratch()
        let raw = s.url("uefi.raw")
        let r = try Subprocess("/usr/bin/qemu-img", ["convert", "-f", "qcow2", "-O", "raw", Guest.uefiDisk, raw]).run()
        try #require(r.status == 0, "\(r.stderrText)")
        let bytes = try #require(FileManager.default.contents(atPath: raw))
        #expect(bytes.prefix(440).allSatisfy { $0 == 0 }, "no BIOS boot code in the MBR")
        #expect(Array(bytes[510..<512]) == [0x55, 0xAA] && bytes[450] == 0xEE, "a protective MBR")
        #expect(Array(bytes[512..<520]) == Array("EFI PART".utf8))
        // The first partition entry (LBA 2): the ESP type GUID C12A7328-F81F-11D2-BA4B-00A0C93EC93B, mixed-endian.
        #expect(Array(bytes[1024..<1040]) == [0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B])
        #expect(bytes[1152..<1168].allSatisfy { $0 == 0 }, "one partition only")
    }
}
