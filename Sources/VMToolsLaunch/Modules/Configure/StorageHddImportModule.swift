import VMToolsCore

#if canImport(Glibc)
import Glibc
#endif

/// `storage_hdd_import`: offers to convert third-party disk images (VMDK,
/// VHD, VHDX, VDI, and the VMDK inside an `.ova`) into qcow2. Refused, the
/// image runs in snapshot mode. Formats come from the image itself, never
/// from `file` wording; the destination is never the source.
public enum StorageHddImportModule: ConfigureModule {
    public static let name = "storage_hdd_import"

    public static func configure(_ c: inout Configuration) throws {
        for n in c.vm.hddSlots where c.vm.hdd(n).createsizeText.isEmpty {
            let setting = SettingKey.hdd(n).backend
            let value = c.vm.hdd(n).backend
            guard !value.isEmpty else { continue }
            let b = StorageBackend(value)
            guard !b.isRemote else { continue }
            let source = b.path(home: c.home, environment: c.environment)
            guard FileSystem.isRegularFile(source) else { continue }
            let isOVA = DiskImageKind.describe(source) == "POSIX tar archive"
            let format = isOVA ? "ova" : (ImageFormat.detect(source) ?? "raw")
            guard !["qcow2", "raw"].contains(format) else { continue }
            c.console.notice("\(source) is a \(format) image; vmtools works best with qcow2")
            guard try c.prompter.confirm("Convert it to qcow2 (the original is kept)") else { continue }
            let dir = c.home ?? source.deletingLastPathComponent
            var base = source.lastPathComponent
            if let dot = base.lastIndex(of: "."), dot != base.startIndex { base = String(base[..<dot]) }
            // Never the source itself: it exists, so it is never free.
            let dest = FileSystem.newPath(in: dir, base: base, suffix: ".qcow2")
            try convert(source, isOVA: isOVA, to: dest, preallocation: try c.vm.hdd(n).preallocation(), &c)
            c.override(setting, (b.prefix.map { $0 + ":" } ?? "") + dest, by: name)
        }
    }

    static func convert(_ source: String, isOVA: Bool, to dest: String, preallocation: VMSettings.Drive.Preallocation = .off,
                        _ c: inout Configuration) throws {
        let qemuImg = try QemuImg.executable(source, environment: c.environment, purpose: "cannot convert")
        var input = source
        var extraction: String?
        defer { if let extraction { FileSystem.removeTree(extraction) } }
        if isOVA {
            let unpacked = try OVA.extractDisk(source, in: dest.deletingLastPathComponent)
            extraction = unpacked.directory
            input = unpacked.disk
        }
        var args = ["convert", "-O", "qcow2"]
        if c.vm.qemuCompress { args.append("-c") }
        // A compressed image cannot be preallocated: compression wins.
        else if preallocation != .off { args += ["-o", "preallocation=\(preallocation.rawValue)"] }
        args += ["--", input, dest]
        c.console.progress("converting \(source) to \(dest)")
        let r = try Subprocess(qemuImg, args).run()
        guard r.status == 0 else {
            try? FileSystem.removeFile(dest)
            throw VMToolsError(.failure, source, "conversion failed: \(r.stderrText.trimmingTrailingWhitespace())")
        }
        c.createdFiles.append(dest)
    }
}
