import VMToolsCore

#if canImport(Glibc)
import Glibc
#endif

/// `storage_backend`: the new VM's disks (vmtools(7) CUSTOMIZATION, vmcp(1)).
///
/// - fork: an empty qcow2 overlay on each writable image of the parent —
///   constant time, whatever the disk's size; with `-s` the parent's image
///   in snapshot mode; CD-ROMs and read-only disks are simply inherited.
/// - copy: the VM's own images are copied sparsely (an overlay keeps its
///   backing file); read-only media outside the home are shared.
/// - autonomous: every image the VM uses is copied, backing chains flattened.
///
/// An image whose backing file was itself copied in this operation (a
/// recursive copy) is re-pointed at that copy. Backing formats are always
/// recorded (QEMU ≥ 6.1 refuses a backing file without one). The kernel
/// and initrd of a direct kernel boot go with the disks (`cloneBootFiles`).
public enum StorageBackendModule: CloneModule {
    public static let name = "storage_backend"

    public static func clone(_ c: inout CloneJob) throws {
        for setting in c.source.settings.names where SettingName.isStorageBackend(setting) {
            let value = c.value(setting)
            guard !value.isEmpty else { continue }
            let b = StorageBackend(value)
            guard !b.isRemote, !b.location.isEmpty else { continue }
            let provenance = c.source.settings.provenance(setting)
            var settingHome = c.source.home
            var own = false
            if case let .vmFile(path, _, depth) = provenance {
                settingHome = path.deletingLastPathComponent
                own = depth == 0
            }
            let source = b.path(home: settingHome, environment: c.environment)
            if FileSystem.isWithin(source, c.destination) { continue }
            let readOnly = setting.hasPrefix(SettingKey.cdromPrefix) || DiskImageKind.isISO(source) || b.prefix == "ro" || b.prefix == "snap"
            switch c.action {
            case .fork:
                if readOnly { continue }  // the child inherits the parent's setting
                try requireImage(source, setting, c)
                if c.snapshot {
                    c.override(setting, "snap:" + source)
                    continue
                }
                let dest = FileSystem.newPath(in: c.destination, base: trimQcow2(source.lastPathComponent), suffix: ".qcow2")
                try c.transaction.record(.remove(dest))
                try QemuImg.createOverlay(dest, backing: source, environment: c.environment)
                c.override(setting, (b.prefix == "rw" ? "rw:" : "") + dest)
            case .copy, .autonomous:
                // A copy keeps what it inherits: only the VM's own disks are its to copy.
                if c.action == .copy && !own { continue }
                // An autonomous copy must not depend on its source's tree at all.
                let inHome = source.deletingLastPathComponent == c.source.home
                    || (c.action == .autonomous && c.source.ancestors.contains(source.deletingLastPathComponent))
                let backing = FileSystem.exists(source) ? try QemuImg.backing(of: source, environment: c.environment) : nil
                let share = readOnly && !inHome && (backing == nil || c.action == .autonomous)
                let prefix = c.snapshot ? "snap:" : b.prefix.map { $0 + ":" } ?? ""
                if share {
                    c.override(setting, prefix + source)
                    continue
                }
                try requireImage(source, setting, c)
                let dest = try copyImage(source, backing: backing, &c)
                c.imageMap[source] = dest
                c.override(setting, prefix + dest)
            }
        }
        try cloneBootFiles(&c)
    }

    static func requireImage(_ path: String, _ setting: String, _ c: CloneJob) throws {
        guard FileSystem.isReadable(path), FileSystem.isRegularFile(path) else {
            throw VMToolsError(.failure, setting, "\(path) (from \(c.source.settings.provenance(setting) ?? .builtin)) is not a readable disk image")
        }
        if QemuImg.isInUse(path, environment: c.environment) {
            throw VMToolsError(.failure, path, "is being written by a running QEMU; stop the VM using it first")
        }
    }

    /// `disk.qcow2` → `disk`, so converted copies are named `disk.qcow2`.
    static func trimQcow2(_ base: String) -> String {
        base.hasSuffix(".qcow2") ? String(base.dropLast(6)) : base
    }

    /// A byte-for-byte sparse copy keeps the file's name and its backing;
    /// flattening (autonomous) and compression (`-z`) go through qemu-img
    /// convert into a `.qcow2`.
    static func copyImage(_ source: String, backing: QemuImg.Backing?, _ c: inout CloneJob) throws -> String {
        let flatten = c.action == .autonomous && backing != nil
        let base = source.lastPathComponent
        if flatten || c.compress {
            let dest = FileSystem.newPath(in: c.destination, base: trimQcow2(base), suffix: ".qcow2")
            try c.transaction.record(.remove(dest))
            var keep = flatten ? nil : backing
            if let b = keep, let copied = c.imageMap[b.path] { keep?.path = copied }
            try QemuImg.convert(source, to: dest, backing: keep, compress: c.compress,
                                progress: c.console.verbosity >= 2 && c.console.err.isTerminal, environment: c.environment)
            try Interrupt.check()
            return dest
        }
        let dest = FileSystem.newPath(in: c.destination, base: base)
        try c.transaction.record(.remove(dest))
        let bar = ProgressBar(console: c.console, label: base)
        try SparseCopy.copy(source, to: dest, progress: bar.map { b in { b.update($0, $1) } })
        if let backing, let copied = c.imageMap[backing.path] {
            try QemuImg.rebaseUnsafe(dest, backing: copied, format: backing.format, environment: c.environment)
        }
        return dest
    }
}
