import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// One probe names what a file is (issue 23, item 5): the format vmtools
/// hands QEMU is the one qemu-img itself finds, and an ISO, a tar (an OVA)
/// and a raw disk are told apart by the same read.
@Suite struct ImageProbeTests {
    /// Every format qemu-img makes, in the variants that put the magic bytes
    /// in different places (a VHD's footer only, a VMDK's text descriptor).
    @Test(.requires("qemu-img"))
    func theFormatIsTheOneQemuImgFinds() throws {
        guard let qemuImg = requireTool("qemu-img") else { return }
        let s = Scratch()
        let cases: [(name: String, format: String, options: String, kind: ImageKind)] = [
            ("v2.qcow2", "qcow2", "compat=0.10", .qcow2(version: 2)),
            ("v3.qcow2", "qcow2", "compat=1.1", .qcow2(version: 3)),
            ("old.qcow", "qcow", "", .qcow),
            ("sparse.vmdk", "vmdk", "subformat=monolithicSparse", .vmdk(descriptor: false)),
            ("flat.vmdk", "vmdk", "subformat=monolithicFlat", .vmdk(descriptor: true)),
            ("disk.vdi", "vdi", "", .vdi),
            ("disk.vhdx", "vhdx", "", .vhdx),
            ("dynamic.vhd", "vpc", "subformat=dynamic", .vpc),
            ("fixed.vhd", "vpc", "subformat=fixed", .vpc),
            ("disk.raw", "raw", "", .raw),
        ]
        for c in cases {
            let path = s.url(c.name)
            let made = try Subprocess(qemuImg, ["create", "-q", "-f", c.format] + (c.options.isEmpty ? [] : ["-o", c.options]) + [path, "1M"]).run()
            try #require(made.status == 0, "\(c.name): \(made.stderrText)")
            let info = try Subprocess(qemuImg, ["info", "--output=json", path]).run()
            try #require(info.status == 0, "\(c.name): \(info.stderrText)")
            var found = try JSON.parse(info.stdoutText)["format"]?.stringValue
            // QEMU's own probe looks for a VHD's header at the start only; a
            // fixed VHD has just the footer, and vmtools names it for QEMU.
            if c.name == "fixed.vhd" { #expect(found == "raw"); found = "vpc" }
            let probe = try #require(ImageProbe(path), "\(c.name)")
            #expect(probe.kind == c.kind, "\(c.name)")
            #expect(probe.kind.format == found, "\(c.name): qemu-img says \(found ?? "nothing")")
            #expect(ImageFormat.detect(path) == found, "\(c.name)")
            #expect(Appliance.kind(of: path) == nil, "\(c.name)")
        }
        #expect(ImageProbe.describe(s.url("v3.qcow2")) == "QEMU QCOW2 Image (v3), 1048576 bytes")
        #expect(ImageProbe.describe(s.url("fixed.vhd")) == "Microsoft Disk Image (VHD)")
        #expect(ImageFormat.virtualSize(s.url("v2.qcow2")) == 1 << 20)
        #expect(ImageFormat.virtualSize(s.url("disk.vdi")) == nil)
    }

    /// An ISO and a tar are raw to QEMU, yet known: the ISO goes on a CD-ROM
    /// drive, the tar is an appliance (by its content, whatever its name),
    /// and `vminfo` says what each is.
    @Test(.requires("xorriso", "tar"))
    func anISOAndATarAreRawButKnown() throws {
        guard let xorriso = requireTool("xorriso"), let tar = requireTool("tar") else { return }
        let s = Scratch()
        try s.write("cd/hello.txt", "hello\n")
        let iso = try Subprocess(xorriso, ["-as", "mkisofs", "-quiet", "-V", "PROBE", "-o", s.url("cd.iso"), s.url("cd")]).run()
        try #require(iso.status == 0, "\(iso.stderrText)")
        let archive = try Subprocess(tar, ["-cf", s.url("web.tar"), "-C", s.url("cd"), "hello.txt"]).run()
        try #require(archive.status == 0, "\(archive.stderrText)")
        try s.write("web.vmx", "displayName = \"web\"\n")
        try s.write("raw.ovf", "not xml\n")

        #expect(ImageProbe(s.url("cd.iso"))?.kind == .iso)
        #expect(ImageFormat.detect(s.url("cd.iso")) == "raw")
        #expect(DiskImageKind.isISO(s.url("cd.iso")))
        #expect(ImageProbe.describe(s.url("cd.iso")) == "ISO 9660 CD-ROM filesystem data 'PROBE'")
        #expect(ImageProbe(s.url("web.tar"))?.kind == .tar)
        #expect(ImageFormat.detect(s.url("web.tar")) == "raw")
        #expect(ImageProbe.describe(s.url("web.tar")) == "POSIX tar archive")
        #expect(Appliance.kind(of: s.url("web.tar")) == .ova)
        #expect(Appliance.kind(of: s.url("web.vmx")) == .vmx)
        #expect(Appliance.kind(of: s.url("raw.ovf")) == nil)
        #expect(Appliance.kind(of: s.url("cd.iso")) == nil)
        #expect(ImageProbe(s.url("web.vmx"))?.kind == .raw)
        #expect(ImageProbe(s.url("missing")) == nil)
        #expect(ImageProbe.describe(s.url("missing")) == "missing (no such file)")
    }
}
