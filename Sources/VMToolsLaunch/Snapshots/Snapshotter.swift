#if canImport(Glibc)
import Glibc
#endif
import VMToolsCore
import VMToolsQEMU

/// Takes, reverts and deletes a VM's named snapshots (vmsnap(1)): every
/// image of the VM, the TPM state (`snapshots/NAME/tpm/`) and, for a running
/// VM, its RAM and devices, all or nothing (journaled, `vmfix -b`).
/// The caller holds the VM's lock for the whole of each operation: the
/// checks here (forks, what the images hold) stay true only under it.
///
/// Each operation makes the checks both sides share first (the name, the
/// images, the forks, what exists), then goes to the running VM's side
/// (`Snapshotter+Live.swift`) or the stopped VM's (`Snapshotter+Stopped.swift`).
public struct Snapshotter {
    public let vm: ResolvedVM
    public let global: GlobalConfig
    public let environment: [String: String]
    public let console: Console
    public var snapshots: VMSnapshots

    public init(vm: ResolvedVM, global: GlobalConfig, environment: [String: String], console: Console) {
        self.vm = vm
        self.global = global
        self.environment = environment
        self.console = console
        self.snapshots = VMSnapshots(vm, environment: environment)
    }

    /// Saves snapshot `name` (live when the VM runs); `replace` deletes an
    /// existing one of that name first (`-f`). The caller holds the VM's lock.
    @discardableResult
    public func create(_ name: String, replace: Bool = false) throws -> Snapshot {
        try SnapshotName.check(name, home: vm.home)
        try checkImages()
        let existing = try snapshots.snapshot(name)
        if existing != nil {
            guard replace else {
                throw VMToolsError(.failure, vm.home, "a snapshot '\(name)' exists already ('vmsnap -f' replaces it)")
            }
            try checkNoForks("replaced")
        }
        if let live = try liveConnection() { return try createLive(name, replace: replace, live: live) }
        return try createStopped(name, replacing: existing)
    }

    /// Puts the VM back to `name`: live on a running VM (a live snapshot
    /// only); on a stopped one the images and TPM, and the next `vmup`
    /// resumes the saved RAM of a live snapshot. The caller holds the VM's lock.
    public func revert(_ name: String) throws {
        try SnapshotName.check(name, home: vm.home)
        try checkImages()
        try checkNoForks("reverted")
        let snapshot = try existing(name)
        // Every image goes back, or the VM would see disks of two moments.
        for disk in snapshots.capable where !snapshot.disks.contains(disk.label) {
            throw VMToolsError(.failure, vm.home, "snapshot '\(name)' is not on \(disk.label) (\(disk.path)): it cannot be reverted ('vmsnap -d' removes it)")
        }
        if let live = try liveConnection() { return try revertLive(name, live: live) }
        try revertStopped(snapshot)
    }

    /// Deletes `name` from every image that holds it, with its
    /// `snapshots/NAME/`. An image that cannot hold snapshots is no obstacle
    /// here: there is nothing of the snapshot on it. The caller holds the VM's lock.
    public func delete(_ name: String) throws {
        try SnapshotName.check(name, home: vm.home)
        try checkNoForks("deleted")
        let snapshot = try existing(name)
        if let live = try liveConnection() { return try deleteLive(name, live: live) }
        try deleteStopped(snapshot)
    }

    /// A snapshot taken by vmtools itself (`vm_snapshot_auto`):
    /// `auto-WHY-YYYYMMDD-HHMMSS` (local time), on a stopped VM; a second
    /// one in the same second gets `-2`, `-3`, … The caller holds the VM's lock.
    @discardableResult
    public func createAutomatic(_ why: SnapshotAuto) throws -> Snapshot {
        try checkImages()
        guard try liveConnection() == nil else {
            throw VMToolsError(.failure, vm.home, "is running: automatic snapshots are taken of stopped VMs only")
        }
        let base = "auto-\(why.rawValue)-\(Self.timestamp(SystemClock.wallSeconds()))"
        let taken = Set(try snapshots.list().map(\.name))
        var name = base
        var n = 1
        while taken.contains(name) {
            n += 1
            name = "\(base)-\(n)"
        }
        return try createStopped(name, replacing: nil)
    }

    // MARK: Checks both sides share

    /// Refuses a VM with a disk no snapshot can cover, naming the first.
    func checkImages() throws {
        if let message = snapshots.refused.first?.refusalMessage { throw VMToolsError(.failure, vm.home, message) }
        guard !snapshots.capable.isEmpty else { throw VMToolsError(.failure, vm.home, "has no disk to snapshot") }
    }

    /// A fork's disks rest on this VM's: reverting (or deleting, which
    /// rewrites the images' tables) would change what the forks see.
    func checkNoForks(_ what: String) throws {
        let forks = try ChildList.read(home: vm.home, global: global).children.filter { VMHome.isHome($0, global: global) }
        guard !forks.isEmpty else { return }
        throw VMToolsError(.failure, vm.home, "has forks resting on its disks (\(forks.joined(separator: ", "))): a snapshot cannot be \(what) while they exist")
    }

    func existing(_ name: String) throws -> Snapshot {
        guard let s = try snapshots.snapshot(name) else {
            throw VMToolsError(.failure, vm.home, "no snapshot '\(name)' ('vmsnap -l' lists them)")
        }
        return s
    }

    /// `YYYYMMDD-HHMMSS` in local time.
    static func timestamp(_ seconds: Double) -> String {
        var t = time_t(seconds)
        var tmv = tm()
        localtime_r(&t, &tmv)
        var buf = [CChar](repeating: 0, count: 32)
        let n = strftime(&buf, buf.count, "%Y%m%d-%H%M%S", &tmv)
        return String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
