import VMToolsCore
import VMToolsQEMU

/// The running VM's side of `Snapshotter` (vmsnap(1), LIVE SNAPSHOTS):
/// QMP jobs instead of `qemu-img`. `Snapshotter`'s public operations check
/// names, images and forks first, then call these when the VM runs.
///
/// QEMU runs a job to its end even if vmsnap dies, so a live save is all or
/// nothing on the images QEMU has open; the journal covers the rest (the
/// TPM copy, `snapshots/NAME/`, a disabled disk QEMU has not open, which
/// `qemu-img` changes as for a stopped VM).
extension Snapshotter {
    /// How long a job may take: QEMU writes the guest's RAM at disk speed.
    static let liveJobTimeout: Double = 600

    /// QMP on the VM when it runs (its pid file names a live QEMU); nil when
    /// it is stopped.
    func liveConnection() throws -> LiveSnapshot? {
        guard let process = RunningState.process(home: vm.home, global: global) else { return nil }
        let runDirectory = process.runDirectory(pidFile: global.fileNames.pid) ?? vm.home
        let socket = runDirectory.appendingPathComponent(global.fileNames.qmp)
        guard FileSystem.exists(socket) else {
            throw VMToolsError(.failure, vm.home, "cannot snapshot it while it runs: QEMU (pid \(process.pid)) has no QMP socket \(socket) (the qmp module of cfg_modules_buildcmd)")
        }
        let client: QMPClient
        do { client = try QMPClient(path: socket) } catch let e as VMToolsError {
            throw VMToolsError(.failure, vm.home, "cannot snapshot it while it runs: \(e.message)")
        }
        return LiveSnapshot(qmp: client, home: vm.home)
    }

    /// The images as the running QEMU has them: the jobs' nodes, and the
    /// images it has not open (disabled disks), which `qemu-img` serves.
    struct LiveImages {
        var nodes: [(disk: SnapshotDisk, node: LiveSnapshot.BlockNode)] = []
        var closed: [SnapshotDisk] = []
        var nodeNames: [String] { nodes.map(\.node.name) }
    }

    func liveImages(_ live: LiveSnapshot) throws -> LiveImages {
        let disks = snapshots.disks
        var images = LiveImages()
        for (disk, opening) in zip(disks, try live.openings(of: disks.map(\.path))) {
            switch opening {
            case .writable(let node): images.nodes.append((disk, node))
            case .closed: images.closed.append(disk)
            case .readOnly: throw live.notWritable(disk.path)
            }
        }
        return images
    }

    func createLive(_ name: String, replace: Bool, live: LiveSnapshot) throws -> Snapshot {
        let images = try liveImages(live)
        // The RAM goes to the first hard disk QEMU has open.
        guard let vmstate = images.nodes.first(where: { $0.disk.setting != nil }) else {
            throw VMToolsError(.failure, vm.home, "cannot take a live snapshot: QEMU has no hard disk of the VM open to hold its RAM")
        }
        let exists = images.nodes.contains { $0.node.tags.contains(name) }
            || FileSystem.lexists(snapshots.directory(of: name))
            || images.closed.contains { Self.holds($0.path, name) }
        if exists {
            guard replace else { throw VMToolsError(.failure, vm.home, "snapshot '\(name)' exists already (vmsnap -f replaces it)") }
            try deleteLive(name, live: live)
        }
        let tx = Transaction(anchor: vm.home, environment: environment)
        do {
            try tx.makeDirectory(snapshots.directory)
            try tx.makeDirectory(snapshots.directory(of: name))
            let tpm = try copyTPM(name, tx)
            for disk in snapshots.disks { try tx.record(.deleteSnapshot(image: disk.path, tag: name)) }
            try live.save(name, vmstate: vmstate.node.name, devices: images.nodeNames, timeout: Self.liveJobTimeout)
            for disk in images.closed { try QemuImg.snapshot(.create, name, image: disk.path, environment: environment) }
            tx.commit()
            let saved = try live.blockNodes().first { $0.name == vmstate.node.name }?.snapshots.first { $0.name == name }
            return Snapshot(name: name, date: saved?.date ?? Int64(SystemClock.now()), vmStateSize: saved?.vmStateSize ?? 0,
                            disks: snapshots.disks.map(\.label), tpm: tpm, complete: true)
        } catch {
            tx.rollback()
            throw error
        }
    }

    func revertLive(_ name: String, live: LiveSnapshot) throws {
        let images = try liveImages(live)
        guard let vmstate = images.nodes.first(where: { n in n.node.snapshots.contains { $0.name == name && $0.vmStateSize > 0 } }) else {
            if images.nodes.contains(where: { $0.node.tags.contains(name) }) || images.closed.contains(where: { Self.holds($0.path, name) }) {
                throw VMToolsError(.failure, vm.home, "cannot revert to snapshot '\(name)' while the VM runs: it was taken of a stopped VM: stop the VM (vmdown) to revert to it")
            }
            throw VMToolsError(.failure, vm.home, "no snapshot '\(name)'")
        }
        if let missing = images.nodes.first(where: { !$0.node.tags.contains(name) }) {
            throw VMToolsError(.failure, vm.home, "cannot revert to snapshot '\(name)': \(missing.disk.path) does not hold it (vmsnap -d removes an incomplete snapshot)")
        }
        let tx = Transaction(anchor: vm.home, environment: environment)
        do {
            // A disk QEMU has not open follows as for a stopped VM; the TPM's
            // state is in the saved devices, which QEMU hands back to swtpm.
            let closed = images.closed.filter { Self.holds($0.path, name) }
            for disk in closed { try tx.record(.applySnapshot(image: disk.path, tag: name)) }
            try live.load(name, vmstate: vmstate.node.name, devices: images.nodeNames, timeout: Self.liveJobTimeout)
            for disk in closed { try QemuImg.snapshot(.apply, name, image: disk.path, environment: environment) }
            tx.commit()
        } catch {
            tx.rollback()
            throw error
        }
    }

    func deleteLive(_ name: String, live: LiveSnapshot) throws {
        let images = try liveImages(live)
        let tx = Transaction(anchor: vm.home, environment: environment)
        do {
            // Journaled first: a replay finishes the deletion (vmsnap(1), CRASH SAFETY).
            for disk in snapshots.disks { try tx.record(.deleteSnapshot(image: disk.path, tag: name)) }
            let directory = snapshots.directory(of: name)
            try tx.record(.remove(directory))
            try live.delete(name, devices: images.nodeNames, timeout: Self.liveJobTimeout)
            for disk in images.closed where Self.holds(disk.path, name) {
                try QemuImg.snapshot(.delete, name, image: disk.path, environment: environment)
            }
            FileSystem.removeTree(directory)
            tx.commit()
        } catch {
            // Roll forward: what was journaled is deleted by the replay.
            tx.rollback()
            throw error
        }
    }

    /// Whether an image QEMU has not open holds `tag` (its snapshot table).
    static func holds(_ image: String, _ tag: String) -> Bool {
        (try? Qcow2SnapshotTable.read(image).contains { $0.name == tag }) ?? false
    }

    /// `tpm/` copied to `snapshots/NAME/tpm/`, journaled; false when the VM
    /// has no TPM directory.
    func copyTPM(_ name: String, _ tx: Transaction) throws -> Bool {
        let tpm = vm.home.appendingPathComponent("tpm")
        guard FileSystem.isDirectory(tpm), !FileSystem.isSymlink(tpm) else { return false }
        let copy = snapshots.directory(of: name).appendingPathComponent("tpm")
        try tx.record(.remove(copy))
        try SparseCopy.copyTree(tpm, to: copy)
        return true
    }
}
