/// `storage_cdrom`: CD-ROM drives on the secondary IDE channel (index 2, 3).
/// A directory is packed into an ISO for the run.
public enum StorageCdromModule: BuildCmdModule {
    public static let name = "storage_cdrom"

    public static func build(_ c: inout QemuCommand) throws {
        for n in 1...2 where c.isYes("vm_storage_cdrom\(n)_enable") {
            let setting = "vm_storage_cdrom\(n)_backend"
            var drive = "if=ide,index=\(n + 1),media=cdrom,read-only=on"
            let value = c.value(setting)
            if !value.isEmpty {
                let b = StorageBackend(value)
                if b.prefix == "rw" || b.prefix == "snap" { throw c.invalid(setting, "a CD-ROM cannot be writable (only the ro: prefix fits)") }
                guard !b.location.isEmpty else { throw c.invalid(setting, "empty path") }
                if b.isRemote {
                    drive += ",file=\(qemuEscape(b.location))"
                } else {
                    var path = b.path(home: c.home, environment: c.environment)
                    if FileSystem.isDirectory(path) {
                        path = try makeISO(from: path, &c)
                    } else if !FileSystem.isReadable(path) {
                        throw c.invalid(setting, "no readable file at \(path)")
                    }
                    drive += ",file=\(qemuEscape(path)),format=\(ImageFormat.detect(path) ?? "raw")"
                }
            }
            c.append("-drive", drive)
        }
    }

    /// Packs a directory into a temporary ISO; QEMU keeps it open, and vmup
    /// removes the file once QEMU has started.
    static func makeISO(from dir: String, _ c: inout QemuCommand) throws -> String {
        let iso = (c.runDirectory ?? "/tmp").appendingPathComponent(".vmtools-\(dir.lastPathComponent).iso")
        if c.dryRun { return iso }
        let searchPath = c.environment["PATH"]
        let tool = ["genisoimage", "mkisofs", "xorriso"].compactMap { Subprocess.which($0, path: searchPath) }.first
        guard let tool else {
            throw VMToolsError(.failure, dir, "sharing a directory as a CD-ROM needs genisoimage or xorriso (Debian: apt-get install xorriso)")
        }
        // xorriso takes `--` as the end of its mkisofs emulation; the path is
        // absolute, so it cannot be mistaken for an option anyway.
        let args = tool.hasSuffix("xorriso") ? ["-as", "mkisofs", "-J", "-R", "-quiet", "-o", iso, dir]
                                             : ["-J", "-R", "-quiet", "-o", iso, "--", dir]
        let r = try Subprocess(tool, args).run()
        guard r.status == 0 else { throw VMToolsError(.failure, dir, "cannot make an ISO: \(r.stderrText.trimmingTrailingWhitespace())") }
        c.temporaryFiles.append(iso)
        return iso
    }
}
