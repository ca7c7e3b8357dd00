import VMToolsCore

/// `storage_cdrom`: CD-ROM drives 1 and 2 on the secondary IDE channel
/// (index 2, 3), as the original; drives 3 and up on a virtio-scsi
/// controller, since IDE has no more slots. A directory is packed into an
/// ISO for the run.
public enum StorageCdromModule: BuildCmdModule {
    public static let name = "storage_cdrom"
    static let scsiController = "vmtools-scsi0"

    public static func build(_ c: inout QemuCommand) throws {
        var scsi = false
        for n in c.vm.cdromSlots where c.vm.cdrom(n).enabled {
            let setting = SettingKey.cdrom(n).backend
            var drive = n <= 2 ? "if=ide,index=\(n + 1),media=cdrom,read-only=on" : "if=none,id=cdrom\(n),media=cdrom,read-only=on"
            let value = c.vm.cdrom(n).backend
            var described = Machine.CDROM(slot: n, setting: setting, source: nil, format: nil, bus: n <= 2 ? .ide : .scsi, index: n <= 2 ? n + 1 : n - 3)
            if !value.isEmpty {
                let b = StorageBackend(value)
                if b.prefix == "rw" || b.prefix == "snap" { throw c.invalid(setting, "a CD-ROM cannot be writable (only the ro: prefix fits)") }
                guard !b.location.isEmpty else { throw c.invalid(setting, "empty path") }
                if b.isRemote {
                    drive += ",file=\(qemuEscape(b.location))"
                    described.source = .remote(b.location)
                } else {
                    var path = b.path(home: c.home, environment: c.environment)
                    described.source = .file(path)
                    if FileSystem.isDirectory(path) {
                        let dir = path
                        path = try makeISO(from: path, &c)
                        described.source = .packed(directory: dir, iso: path)
                    } else if let problem = FileSystem.imageFileProblem(path) {
                        throw c.invalid(setting, problem)
                    } else if !FileSystem.isReadable(path) {
                        throw c.invalid(setting, "no readable file at \(path)")
                    }
                    let format = ImageFormat.detect(path) ?? "raw"
                    drive += ",file=\(qemuEscape(path)),format=\(format)"
                    described.format = format
                }
            }
            c.append("-drive", drive)
            c.plan.machine.cdroms.append(described)
            if n > 2 {
                if !scsi { c.append("-device", "virtio-scsi-pci,id=\(scsiController)") }
                scsi = true
                c.append("-device", "scsi-cd,drive=cdrom\(n),bus=\(scsiController).0")
            }
        }
    }

    /// A directory becomes an ISO the executor packs before QEMU starts and
    /// removes once QEMU has opened it.
    static func makeISO(from dir: String, _ c: inout QemuCommand) throws -> String {
        let iso = (c.runDirectory ?? "/tmp").appendingPathComponent(".vmtools-\(dir.lastPathComponent).iso")
        c.plan.generatedFiles.append(.init(path: iso, kind: .isoFromDirectory(dir)))
        return iso
    }
}
