/// `storage_backend`: the new VM's disks (modules.md §8.2). A fork gets an
/// empty qcow2 overlay on each writable image of its parent — constant time,
/// whatever the disk's size — with the backing format recorded (QEMU ≥ 6.1
/// refuses a backing file without one). With `-s` it uses the parent's image
/// in snapshot mode; CD-ROM images and read-only disks are simply inherited.
public enum StorageBackendModule: CloneModule {
    public static let name = "storage_backend"

    public static func clone(_ c: inout CloneJob) throws {
        guard c.action == .fork else {
            throw VMToolsError(.notImplemented, nil, "copying disks (vmcp, vmfork -a/-c) is not implemented yet in this version of vmtools")
        }
        for setting in c.source.settings.names where setting.hasPrefix("vm_storage_") && setting.hasSuffix("_backend") {
            let value = c.value(setting)
            guard !value.isEmpty else { continue }
            let b = StorageBackend(value)
            guard !b.isRemote, !b.location.isEmpty else { continue }
            let home = c.source.settings.provenance(setting).flatMap { p -> String? in
                if case let .vmFile(path, _, _) = p { return path.deletingLastPathComponent }
                return nil
            } ?? c.source.home
            let source = b.path(home: home, environment: c.environment)
            if setting.hasPrefix("vm_storage_cdrom") || DiskImageKind.isISO(source) || b.prefix == "ro" || b.prefix == "snap" {
                continue  // read-only media: the child inherits the parent's setting
            }
            guard FileSystem.isReadable(source), FileSystem.isRegularFile(source) else {
                throw VMToolsError(.failure, setting, "\(source) (from \(c.source.settings.provenance(setting) ?? .builtin)) is not a readable disk image")
            }
            if c.snapshot {
                c.override(setting, "snap:" + source)
                continue
            }
            var base = source.lastPathComponent
            if base.hasSuffix(".qcow2") { base = String(base.dropLast(6)) }
            let dest = FileSystem.newPath(in: c.destination, base: base, suffix: ".qcow2")
            try QemuImg.createOverlay(dest, backing: source, environment: c.environment)
            c.transaction.onRollback("remove \(dest)") { try? FileSystem.removeFile(dest) }
            c.override(setting, (b.prefix == "rw" ? "rw:" : "") + dest)
        }
    }
}
