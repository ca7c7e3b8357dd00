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

    public init(label: String, setting: String?, path: String, refusal: String? = nil) {
        self.label = label
        self.setting = setting
        self.path = path
        self.refusal = refusal
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

    public static func disks(of settings: VMSettings, home: String, environment: [String: String]) -> [SnapshotDisk] {
        []
    }

    public var directory: String { home.appendingPathComponent(Self.directoryName) }
    public func directory(of name: String) -> String { directory.appendingPathComponent(name) }
    public var resumePath: String { directory.appendingPathComponent(Self.resumeName) }

    /// The snapshots, oldest first.
    public func list() throws -> [Snapshot] {
        throw VMToolsError(.failure, home, "listing snapshots is not implemented yet")
    }
}
