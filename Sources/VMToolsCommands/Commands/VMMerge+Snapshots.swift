import VMToolsCore
import VMToolsLaunch

/// vmmerge and named snapshots (vmmerge(1) SNAPSHOTS). Merging into the
/// parent keeps the parent's: `qemu-img commit` writes into the parent's
/// image, whose internal snapshots stay valid, and the safe copy is a file
/// copy when the image has some. The merged VM's own would be folded away
/// with its overlays, and merging into the children rewrites overlays
/// under new backing files, which no internal snapshot survives: both are
/// refused while there are snapshots.
extension VMMergeCommand.Merge {
    /// Refuses when `vm` has snapshots, naming them.
    func refuseSnapshots(_ vm: ResolvedVM, _ why: String) throws {
        let list = try VMSnapshots(vm, environment: env).listIfAny()
        guard !list.isEmpty else { return }
        throw VMToolsError(.failure, vm.home, "has snapshots (\(list.map(\.name).joined(separator: ", "))), which \(why); delete them first with vmsnap -d")
    }

    /// `vm_snapshot_auto=merge`: the parent's snapshot before its disks
    /// change, deleted again if the merge is undone (vm.settings(5)).
    func autoSnapshot(_ parent: ResolvedVM, _ tx: Transaction) throws {
        guard try VMSettings(parent.settings).snapshotAuto().contains(.merge) else { return }
        let snapshotter = Snapshotter(vm: parent, global: global, environment: env, console: context.console)
        let snapshot = try snapshotter.createAutomatic(.merge)
        let dir = snapshotter.snapshots.directory(of: snapshot.name)
        if FileSystem.lexists(dir) { try tx.record(.remove(dir)) }
        for d in snapshotter.snapshots.disks where snapshot.disks.contains(d.label) {
            try tx.record(.deleteSnapshot(image: d.path, tag: snapshot.name))
        }
        context.console.notice("\(parent.home): took snapshot \(snapshot.name) before the merge (\(SettingKey.snapshotAuto))")
    }

    /// `-c` takes none: the children's overlays are rewritten, the VM goes.
    func noteNoAutoSnapshot(_ vms: [ResolvedVM]) {
        guard vms.contains(where: { (try? VMSettings($0.settings).snapshotAuto().contains(.merge)) == true }) else { return }
        context.console.notice("\(home): no snapshot taken (\(SettingKey.snapshotAuto)): merging into the children rewrites their disks, which can hold none")
    }

    /// A copy of `image` beside it that keeps its internal snapshots: a
    /// file copy (qemu-img convert would drop them).
    func snapshotKeepingCopy(of image: String, to copy: String) throws -> Bool {
        guard VMSnapshots.headerCount(image) > 0 else { return false }
        try SparseCopy.copy(image, to: copy)
        return true
    }

    /// The merged child's variable store into the parent's, when the
    /// parent's holds snapshots: its data written into a copy of the
    /// parent's store (snapshots and all), which replaces it.
    func mergeVarsKeepingSnapshots(from child: String, into parent: String, _ tx: Transaction) throws -> Bool {
        guard VMSnapshots.headerCount(parent) > 0 else { return false }
        guard let want = ImageFormat.virtualSize(child), let have = ImageFormat.virtualSize(parent), want <= have else {
            throw VMToolsError(.failure, parent, "cannot take in \(child) and keep its snapshots: the variable stores differ in size")
        }
        let copy = FileSystem.newPath(in: parent.deletingLastPathComponent, base: ".\(parent.lastPathComponent).merge") { !FileSystem.lexists($0) }
        try tx.record(.remove(copy))
        try SparseCopy.copy(parent, to: copy)
        try QemuImg.overwrite(copy, with: child, environment: env)
        try FileSystem.syncFile(copy)
        try tx.moveAside(parent)
        try tx.rename(copy, to: parent)
        return true
    }
}
