#if canImport(Glibc)
import Glibc
#endif

/// One image a snapshot covers: a hard disk of the VM, or its UEFI variable
/// store (vmsnap(1)).
public struct SnapshotDisk: Sendable, Equatable {
    /// How vmsnap names it: `hdd1`, `hdd2`, …, `vars`.
    public var label: String
    /// The setting that names it (`vm_storage_hdd1_backend`); nil for `vars`.
    public var setting: String?
    /// The image file.
    public var path: String
    /// Why it cannot hold a snapshot (raw, a device, a URL, a `snap:` or
    /// `ro:` disk), one line; nil for a writable qcow2 image.
    public var refusal: String?
    /// The snapshots its qcow2 header counted when it was probed (0 for a
    /// refused image): `listIfAny` reads no table of an image counting none.
    public var headerCount: Int

    public init(label: String, setting: String?, path: String, refusal: String? = nil, headerCount: Int = 0) {
        self.label = label
        self.setting = setting
        self.path = path
        self.refusal = refusal
        self.headerCount = headerCount
    }

    /// The label of the UEFI variable store.
    public static let varsLabel = "vars"

    /// The refusal as the one line an error about `home` carries.
    public var refusalMessage: String? {
        refusal.map { "\(label) (\(path)) \($0): a snapshot needs every disk of the VM to be a writable qcow2 image" }
    }
}

/// A named snapshot of a VM, as its images and `snapshots/NAME/` show it.
public struct Snapshot: Sendable, Equatable {
    public var name: String
    /// Seconds since the epoch, from the first image that holds it.
    public var date: Int64
    /// Taken of a running VM: RAM and devices saved (in the first disk).
    public var live: Bool { vmStateSize > 0 }
    public var vmStateSize: UInt64
    /// Labels of the images that hold it (`hdd1`, `vars`), in the VM's order.
    public var disks: [String]
    /// `snapshots/NAME/tpm/` holds a copy of the TPM state.
    public var tpm: Bool
    /// Every snapshot-capable image of the VM holds it. An incomplete one is
    /// what an interrupted or foreign change left; `vmsnap -d` removes it.
    public var complete: Bool

    public init(name: String, date: Int64, vmStateSize: UInt64, disks: [String], tpm: Bool, complete: Bool) {
        self.name = name
        self.date = date
        self.vmStateSize = vmStateSize
        self.disks = disks
        self.tpm = tpm
        self.complete = complete
    }
}

/// The snapshots of one VM home: which images a snapshot covers and what
/// they hold (vmsnap(1)). Reads only: changes are `Snapshotter`'s.
public struct VMSnapshots: Sendable {
    /// `snapshots/` in the VM home: `NAME/tpm/` per snapshot, and `.resume`.
    public static let directoryName = "snapshots"
    /// `snapshots/.resume`: the name of the live snapshot the next `vmup`
    /// resumes (written by a revert of a stopped VM, removed by that start).
    public static let resumeName = ".resume"

    public var home: String
    /// Every hard disk of the VM (enabled or not), then `vars` when the
    /// home has a UEFI variable store.
    public var disks: [SnapshotDisk]

    public init(home: String, disks: [SnapshotDisk]) {
        self.home = home
        self.disks = disks
    }

    /// The images of a resolved VM.
    public init(_ vm: ResolvedVM, environment: [String: String]) {
        self.init(home: vm.home, disks: Self.disks(of: VMSettings(vm.settings), home: vm.home, environment: environment))
    }

    /// Every hard disk slot with a backend, enabled or not (`hddN` by its
    /// slot), then the home's `firmware-vars.qcow2` when there is one. Each
    /// is probed once; one that cannot hold a snapshot carries its refusal.
    /// CD-ROMs and seed volumes are read-only: no snapshot covers them.
    public static func disks(of settings: VMSettings, home: String, environment: [String: String]) -> [SnapshotDisk] {
        var out: [SnapshotDisk] = []
        for n in settings.hddSlots {
            let drive = settings.hdd(n)
            guard !drive.backend.isEmpty else { continue }
            let backend = StorageBackend(drive.backend)
            let label = "hdd\(n)"
            if backend.isRemote {
                out.append(SnapshotDisk(label: label, setting: drive.keys.backend, path: backend.location, refusal: "is a remote disk"))
                continue
            }
            let path = backend.path(home: home, environment: environment)
            switch backend.prefix {
            case "snap": out.append(SnapshotDisk(label: label, setting: drive.keys.backend, path: path, refusal: "is a snap: disk (its changes are thrown away)"))
            case "ro": out.append(SnapshotDisk(label: label, setting: drive.keys.backend, path: path, refusal: "is a read-only ro: disk"))
            default: out.append(probed(label: label, setting: drive.keys.backend, path: path))
            }
        }
        let vars = home.appendingPathComponent(VMFileNames.firmwareVars)
        if FileSystem.lexists(vars) {
            // A link shares another VM's variables; vmfix(1) -s makes it the VM's own.
            out.append(FileSystem.isSymlink(vars)
                ? SnapshotDisk(label: SnapshotDisk.varsLabel, setting: nil, path: vars, refusal: "is a symbolic link ('vmfix -s' makes it the VM's own copy)")
                : probed(label: SnapshotDisk.varsLabel, setting: nil, path: vars))
        }
        return out
    }

    /// The image at `path`, probed once: why it cannot hold internal
    /// snapshots, or the count its header holds.
    static func probed(label: String, setting: String?, path: String) -> SnapshotDisk {
        func refused(_ why: String) -> SnapshotDisk { SnapshotDisk(label: label, setting: setting, path: path, refusal: why) }
        var st = stat()
        guard stat(path, &st) == 0 else { return refused(FileSystem.lexists(path) ? "is a dangling symbolic link" : "does not exist") }
        switch st.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFBLK: return refused("is a block device")
        default: return refused("is not a regular file")
        }
        guard let probe = ImageProbe(path) else { return refused("cannot be read") }
        switch probe.kind {
        case .qcow2(let version) where version == 2 || version == 3:
            // QEMU keeps no internal snapshots in an image whose data lies in another file.
            if version == 3, probe.field(72, 8) & 4 != 0 { return refused("keeps its data in an external data file") }
            return SnapshotDisk(label: label, setting: setting, path: path, headerCount: probe.qcow2SnapshotCount ?? 0)
        case .qcow2(let version): return refused("is a qcow2 image of unknown version \(version)")
        default: return refused("is \(probe.kind.format), not qcow2")
        }
    }

    /// The disks that cannot hold a snapshot.
    public var refused: [SnapshotDisk] { disks.filter { $0.refusal != nil } }
    /// The disks a snapshot goes into.
    public var capable: [SnapshotDisk] { disks.filter { $0.refusal == nil } }

    public var directory: String { home.appendingPathComponent(Self.directoryName) }
    public func directory(of name: String) -> String { directory.appendingPathComponent(name) }
    public var resumePath: String { directory.appendingPathComponent(Self.resumeName) }
    /// Where a snapshot keeps its copy of `tpm/`.
    public func tpmCopy(of name: String) -> String { directory(of: name).appendingPathComponent(VMFileNames.tpmDirectory) }

    /// Each capable image's snapshot table, in the VM's order.
    public func tables() throws -> [(disk: SnapshotDisk, entries: [Qcow2SnapshotTable.Entry])] {
        try capable.map { ($0, try Qcow2SnapshotTable.read($0.path)) }
    }

    /// The snapshots, oldest first: the union of the tags of every capable
    /// image. The date is the first holding image's, the vmstate that of
    /// the first image holding some (QEMU puts it in the first disk).
    public func list() throws -> [Snapshot] {
        try Self.merge(tables(), home: home)
    }

    static func merge(_ tables: [(disk: SnapshotDisk, entries: [Qcow2SnapshotTable.Entry])], home: String) -> [Snapshot] {
        var byName: [String: Int] = [:]
        var out: [Snapshot] = []
        for (disk, entries) in tables {
            for e in entries {
                if let i = byName[e.name] {
                    if !out[i].disks.contains(disk.label) { out[i].disks.append(disk.label) }
                    if out[i].vmStateSize == 0 { out[i].vmStateSize = e.vmStateSize }
                } else {
                    byName[e.name] = out.count
                    out.append(Snapshot(name: e.name, date: e.date, vmStateSize: e.vmStateSize, disks: [disk.label], tpm: false, complete: false))
                }
            }
        }
        let snapshots = home.appendingPathComponent(directoryName)
        for i in out.indices {
            out[i].complete = out[i].disks.count == tables.count
            let tpm = snapshots.appendingPathComponent(out[i].name).appendingPathComponent(VMFileNames.tpmDirectory)
            // A tag that is no plain name (made by hand with qemu-img) has no directory
            // of ours, and a copy reached through a link is not the VM's.
            out[i].tpm = SnapshotName.problem(out[i].name) == nil && FileSystem.isDirectory(tpm)
                && ![snapshots, tpm.deletingLastPathComponent, tpm].contains(where: FileSystem.isSymlink)
        }
        // Stable: snapshots of the same second keep the images' order.
        return out.enumerated().sorted { ($0.element.date, $0.offset) < ($1.element.date, $1.offset) }.map(\.element)
    }

    /// The snapshot called `name`, or nil.
    public func snapshot(_ name: String) throws -> Snapshot? { try list().first { $0.name == name } }

    /// The names of the directories in `snapshots/` (not `.resume`).
    public func directoryNames() -> [String] {
        guard FileSystem.isDirectory(directory), !FileSystem.isSymlink(directory) else { return [] }
        return ((try? FileSystem.listDirectoryEntries(directory)) ?? []).filter { !$0.name.hasPrefix(".") && $0.isDirectory(in: directory) }
            .map(\.name).sorted(by: bytewiseLess)
    }

    /// The live snapshot `snapshots/.resume` names for the next start, or
    /// nil; a link, a damaged or unreadable marker is an error naming it.
    public func resumeMarker() throws -> String? {
        try FileSystem.refuseLink(resumePath)
        guard let text = try FileSystem.readTextIfExists(resumePath, limit: 4096) else { return nil }
        let name = text.hasSuffix("\n") ? String(text.dropLast()) : text
        if let why = SnapshotName.problem(name) { throw VMToolsError(.failure, resumePath, "damaged: \(why)") }
        return name
    }
}
