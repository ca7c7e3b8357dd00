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
        let disks = snapshots.capable
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

    /// `create` checked the name and what exists; `replace` deletes the old
    /// one first, rolling forward on its own (vmsnap(1), -f).
    func createLive(_ name: String, replace: Bool, live: LiveSnapshot) throws -> Snapshot {
        var images = try liveImages(live)
        // The RAM goes to the first hard disk QEMU has open.
        guard let vmstate = images.nodes.first(where: { $0.disk.setting != nil }) else {
            throw VMToolsError(.failure, vm.home, "cannot take a live snapshot: QEMU has no hard disk of the VM open to hold its RAM")
        }
        if replace, try snapshots.snapshot(name) != nil {
            try deleteLive(name, live: live)
            images = try liveImages(live)
        }
        let tx = Transaction(anchor: vm.home, environment: environment)
        var tpm = false
        try journaled(tx) {
            try makeSnapshotDirectory(name, tx)
            tpm = try copyTPM(name, tx)
            try tx.record(snapshots.capable.map { .deleteSnapshot(image: $0.path, tag: name) })
            try live.save(name, vmstate: vmstate.node.name, devices: images.nodeNames, timeout: Self.liveJobTimeout)
            do {
                for disk in images.closed { try QemuImg.snapshot(.create, name, image: disk.path, environment: environment) }
                try Interrupt.check()
            } catch {
                // QEMU holds its images: the journal's qemu-img could not
                // undo the save, QMP can.
                try? live.delete(name, devices: images.nodeNames, timeout: Self.liveJobTimeout)
                throw error
            }
        }
        let saved = try live.blockNodes().first { $0.name == vmstate.node.name }?.snapshots.last { $0.name == name }
        return Snapshot(name: name, date: saved?.date ?? Int64(SystemClock.wallSeconds()), vmStateSize: saved?.vmStateSize ?? 0,
                        disks: snapshots.capable.map(\.label), tpm: tpm, complete: true)
    }

    /// `revert` checked that every image holds it. The TPM's state is in
    /// the saved devices, which QEMU hands back to swtpm: `tpm/` is left
    /// to swtpm. A disk QEMU has not open goes back as for a stopped VM.
    func revertLive(_ name: String, live: LiveSnapshot) throws {
        let images = try liveImages(live)
        guard let vmstate = images.nodes.first(where: { n in n.node.snapshots.contains { $0.name == name && $0.vmStateSize > 0 } }) else {
            throw VMToolsError(.failure, vm.home, "cannot revert to snapshot '\(name)' while the VM runs: it was taken of a stopped VM: stop the VM (vmdown) to revert to it")
        }
        let tx = Transaction(anchor: vm.home, environment: environment)
        try journaled(tx) {
            try tx.record(images.closed.map { .applySnapshot(image: $0.path, tag: name) })
            try live.load(name, vmstate: vmstate.node.name, devices: images.nodeNames, timeout: Self.liveJobTimeout)
            for disk in images.closed { try QemuImg.snapshot(.apply, name, image: disk.path, environment: environment) }
        }
    }

    /// Journaled first, in one record, so a replay finishes the deletion
    /// (vmsnap(1), CRASH SAFETY); QEMU skips the nodes that do not hold the tag.
    func deleteLive(_ name: String, live: LiveSnapshot) throws {
        let images = try liveImages(live)
        let own = snapshots.directory(of: name)
        // Never through a planted link: removing snapshots/NAME would remove another directory.
        try FileSystem.checkOwnDirectory(snapshots.directory)
        let marker = (try? snapshots.resumeMarker()) == name
        let tx = Transaction(anchor: vm.home, environment: environment)
        try journaled(tx) {
            var forward: [Transaction.Undo] = snapshots.capable.map { .deleteSnapshot(image: $0.path, tag: name) }
            if FileSystem.lexists(own) { forward.append(.remove(own)) }
            if marker { forward.append(.remove(snapshots.resumePath)) }
            try tx.record(forward)
            try live.delete(name, devices: images.nodeNames, timeout: Self.liveJobTimeout)
            for disk in images.closed { try deleteTag(name, from: disk.path) }
            FileSystem.removeTree(own)
            FileSystem.syncDirectory(snapshots.directory)
            if marker { try FileSystem.removeFile(snapshots.resumePath) }
        }
    }
}
