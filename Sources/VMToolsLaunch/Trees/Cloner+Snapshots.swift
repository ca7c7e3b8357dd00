import VMToolsCore

/// A clone and the source's named snapshots (vmcp(1), vmfork(1) SNAPSHOTS).
///
/// A snapshot lives inside the qcow2 images, so it goes where an image is
/// copied file for file (the default vmcp, `-a` of a VM without backing
/// files) and is lost where `qemu-img convert` writes a new image (`-z`,
/// `-a` flattening a backing chain). The copy keeps a snapshot only when
/// every one of its images still holds it; the rest are deleted from the
/// copy's images, so it never holds an incomplete one, and named in a
/// notice. A fork's disks are new overlays: it starts with no snapshots.
extension Cloner.Run {
    /// After the copy's settings are written: keeps the snapshots that came
    /// along complete with their `snapshots/NAME/` (the TPM copies), drops
    /// the others. `before` is the source's list.
    func cloneSnapshots(of vm: ResolvedVM, _ before: [Snapshot], to home: String, action: CloneJob.Action) throws {
        guard action != .fork, !before.isEmpty else { return }
        let env = cloner.environment
        let copy = VMSnapshots(try cloner.resolver.loadVM(home: home, global: global), environment: env)
        let names = Set(before.map(\.name))
        var kept: [String] = []
        for s in try copy.listIfAny() where names.contains(s.name) || !s.complete {
            guard s.complete, names.contains(s.name) else {
                // Only images this copy made hold it: the undo removes them anyway.
                for d in copy.disks where s.disks.contains(d.label) {
                    try QemuImg.snapshot(.delete, s.name, image: d.path, environment: env)
                }
                continue
            }
            kept.append(s.name)
        }
        let dropped = before.map(\.name).filter { !kept.contains($0) }
        if !dropped.isEmpty {
            let what = dropped.count == 1 ? "the snapshot" : "the \(dropped.count) snapshots"
            cloner.console.notice("\(home): is without \(what) \(dropped.joined(separator: ", ")) of \(vm.home): its disks were converted (-z, or -a flattening a backing file), which drops snapshots")
        }
        let from = VMSnapshots(home: vm.home, disks: [])
        guard !kept.isEmpty, FileSystem.isDirectory(from.directory), !FileSystem.isSymlink(from.directory) else { return }
        try tx.makeDirectory(copy.directory)
        for name in kept where FileSystem.isDirectory(from.directory(of: name)) && !FileSystem.isSymlink(from.directory(of: name)) {
            let dest = copy.directory(of: name)
            try tx.record(.remove(dest))
            try SparseCopy.copyTree(from.directory(of: name), to: dest)
        }
        try cloneResume(from: from, to: copy, kept: kept)
        FileSystem.syncDirectory(copy.directory)
    }

    /// `snapshots/.resume` (a revert of a stopped VM waiting for its next
    /// start) comes along with its snapshot under `-k` only: the saved RAM
    /// holds the source's MAC addresses and identity, which a plain copy
    /// replaces.
    func cloneResume(from: VMSnapshots, to copy: VMSnapshots, kept: [String]) throws {
        guard let name = try from.resumeMarker(), kept.contains(name) else { return }
        guard cloner.options.keepUnique else {
            cloner.console.notice("\(copy.home): starts afresh, not from the RAM of snapshot \(name) as \(from.home) would (vmsnap -r resumes it; vmcp -k keeps it)")
            return
        }
        try tx.writeFile(Array("\(name)\n".utf8), to: copy.resumePath)
    }
}
