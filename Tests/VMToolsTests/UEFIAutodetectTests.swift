import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// vmcreate's autodetect (vmcreate(1)): an image that can only boot by
/// UEFI (an EFI system partition, no BIOS boot code) gets `vm_firmware=uefi`;
/// anything BIOS can boot keeps bios. The images are made byte by byte.
@Suite struct UEFIAutodetectTests {
    static let esp: [UInt8] = [0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B]
    static let biosBoot: [UInt8] = Array("Hah!IdontNeedEFI".utf8)
    static let linuxData: [UInt8] = [0xAF, 0x3D, 0xC6, 0x0F, 0x83, 0x84, 0x72, 0x47, 0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47, 0x7D, 0xE4]

    /// A 1 MiB disk: a protective MBR (with boot code if asked) and a GPT
    /// whose entries have these types, from the third on (the first two unused).
    static func gpt(_ types: [[UInt8]], bootCode: Bool = false, sector: Int = 512) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 1 << 20)
        if bootCode { for i in 0..<440 { b[i] = UInt8(truncatingIfNeeded: i * 7 + 1) } }
        b[446 + 4] = 0xEE
        b[510] = 0x55
        b[511] = 0xAA
        b.replaceSubrange(sector..<sector + 8, with: Array("EFI PART".utf8))
        func put(_ v: Int, at off: Int, _ n: Int) { for i in 0..<n { b[off + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
        put(2, at: sector + 72, 8)
        put(128, at: sector + 80, 4)
        put(128, at: sector + 84, 4)
        for (k, t) in types.enumerated() { b.replaceSubrange(2 * sector + 128 * (k + 2)..<2 * sector + 128 * (k + 2) + 16, with: t) }
        return b
    }

    static func mbr(type: UInt8, bootCode: Bool = false) -> [UInt8] {
        var b = gpt([], bootCode: bootCode)
        b.replaceSubrange(512..<520, with: [UInt8](repeating: 0, count: 8))
        b[446 + 4] = type
        return b
    }

    @Test func diskImagesByTheirPartitionTables() throws {
        let s = Scratch()
        let cases: [(String, [UInt8], BootFirmware)] = [
            ("esp.raw", Self.gpt([Self.esp, Self.linuxData]), .uefiOnly),
            ("esp4k.raw", Self.gpt([Self.linuxData, Self.esp], sector: 4096), .uefiOnly),
            ("hybrid.raw", Self.gpt([Self.biosBoot, Self.esp, Self.linuxData]), .bios),
            ("grub-mbr.raw", Self.gpt([Self.esp], bootCode: true), .bios),
            ("data.raw", Self.gpt([Self.linuxData]), .none),
            ("mbr-esp.raw", Self.mbr(type: 0xEF), .uefiOnly),
            ("mbr-dos.raw", Self.mbr(type: 0x0C, bootCode: true), .bios),
            ("mbr-data.raw", Self.mbr(type: 0x83), .none),
            ("empty.raw", [UInt8](repeating: 0, count: 4096), .none),
        ]
        for (name, bytes, expected) in cases {
            #expect(BootFirmware.of(try s.writeBytes(name, bytes)) == expected, "\(name)")
        }
        #expect(BootFirmware.of(s.url("missing.raw")) == .none)
    }

    /// A qcow2 is read through its tables: its data clusters, zero clusters and backing file.
    @Test(.requires("qemu-img")) func qcow2ImagesAreReadThroughTheirTables() throws {
        guard let qemuImg = requireTool("qemu-img") else { return }
        let s = Scratch()
        let raw = try s.writeBytes("esp.raw", Self.gpt([Self.esp]))
        for bits in ["512", "4096", "65536"] {
            let q = s.url("esp-\(bits).qcow2")
            #expect(try Subprocess(qemuImg, ["convert", "-q", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=\(bits)", raw, q]).run().status == 0)
            #expect(BootFirmware.of(q) == .uefiOnly, "cluster size \(bits)")
        }
        let overlay = s.url("overlay.qcow2")
        #expect(try Subprocess(qemuImg, ["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", s.url("esp-4096.qcow2"), overlay]).run().status == 0)
        #expect(BootFirmware.of(overlay) == .uefiOnly)
        let blank = s.url("blank.qcow2")
        #expect(try Subprocess(qemuImg, ["create", "-q", "-f", "qcow2", blank, "1M"]).run().status == 0)
        #expect(BootFirmware.of(blank) == .none)
        // Writing BIOS boot code over the overlay's first sector hides the backing file's.
        let hybrid = try s.writeBytes("bios.raw", Self.gpt([Self.esp], bootCode: true))
        #expect(try Subprocess("/usr/bin/qemu-io", ["-f", "qcow2", "-c", "write -P 0x11 0 440", overlay]).run().status == 0)
        #expect(BootFirmware.of(overlay) == .bios)
        #expect(BootFirmware.of(hybrid) == .bios)
    }

    /// A CD boots through El Torito: the guest's isohybrid ISO has a BIOS
    /// entry; one with only an EFI entry needs UEFI.
    @Test(.requires("xorriso")) func isoImagesByTheirBootCatalog() throws {
        guard let xorriso = requireTool("xorriso") else { return }
        let s = Scratch()
        try s.mkdir("cd")
        _ = try s.writeBytes("cd/efi.img", Self.mbr(type: 0x0C))
        _ = try s.write("cd/readme.txt", "an installer\n")
        let iso = s.url("uefi.iso")
        let r = try Subprocess(xorriso, ["-as", "mkisofs", "-quiet", "-o", iso, "-e", "efi.img", "-no-emul-boot", s.url("cd")]).run()
        try #require(r.status == 0, "\(r.stderrText)")
        #expect(BootFirmware.of(iso) == .uefiOnly)
        let bios = s.url("bios.iso")
        let b = try Subprocess(xorriso, ["-as", "mkisofs", "-quiet", "-o", bios, "-b", "efi.img", "-no-emul-boot",
                                         "-eltorito-alt-boot", "-e", "efi.img", "-no-emul-boot", s.url("cd")]).run()
        try #require(b.status == 0, "\(b.stderrText)")
        #expect(BootFirmware.of(bios) == .bios)
        let plain = s.url("plain.iso")
        #expect(try Subprocess(xorriso, ["-as", "mkisofs", "-quiet", "-o", plain, s.url("cd")]).run().status == 0)
        #expect(BootFirmware.of(plain) == .none)
    }

    /// What vmcreate writes: uefi for a UEFI-only disk (qcow2) or CD, bios
    /// (no line) for the guest's hybrid ISO; `-o vm_firmware=bios` wins.
    @Test(.requiresGuest) func vmcreateWritesTheFirmwareItDetects() throws {
        guard let qemuImg = requireTool("qemu-img"), Guest.build() != nil else { return }
        let cli = try CLI(Scratch())
        try cli.scratch.mkdir("vms")
        let raw = try cli.scratch.writeBytes("esp.raw", Self.gpt([Self.esp, Self.linuxData]))
        let disk = cli.scratch.url("esp.qcow2")
        #expect(try Subprocess(qemuImg, ["convert", "-q", "-f", "raw", "-O", "qcow2", raw, disk]).run().status == 0)
        func firmware(_ args: [String], _ name: String) throws -> String? {
            let home = cli.scratch.url("vms/" + name)
            let r = try cli.run("vmcreate", ["-n", "-y", "-o", "vm_ram_size=256M"] + args + ["--", home])
            #expect(r.status == 0, "\(name): \(r.err)")
            return try VMSettingsFile.read(home + "/vm.settings").value(SettingKey.firmware)
        }
        #expect(try firmware(["-c", disk], "disk") == "uefi")
        #expect(try firmware(["-c", disk, "-o", "vm_firmware=bios"], "asked") == "bios")
        #expect(try firmware(["-c", disk, "-o", "vm_firmware=uefi-secure"], "secure") == "uefi-secure")
        #expect(try firmware(["-d", Guest.iso], "hybrid") == nil)
        // An empty new disk boots nothing: the CD decides.
        #expect(try firmware(["-d", raw, "-o", "vm_storage_hdd1_createsize=1G"], "installer") == "uefi")
    }

    /// The modern template shows how to ask for UEFI but does not ask: it
    /// applies at every start, to disks installed with BIOS too.
    @Test func theModernTemplateShowsHowToAskForUEFI() throws {
        let text = try String(contentsOfFile: Repo.root + "/etc/templates/modern.tpl", encoding: .utf8)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.contains("#vm_firmware='uefi'"))
        #expect(!lines.contains { $0.hasPrefix(SettingKey.firmware) })
    }
}
