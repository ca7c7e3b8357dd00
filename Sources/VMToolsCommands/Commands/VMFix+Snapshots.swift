import VMToolsCore

/// `vmfix -s` on named snapshots (vmfix(1), vmsnap(1)). A snapshot on some
/// of the VM's images only is reported, not repaired: vmfix cannot know
/// which images are right, and `vmsnap -d` removes it. What is vmtools'
/// own is repaired: a `snapshots/NAME/` no image holds a snapshot of goes,
/// and so does a `snapshots/.resume` naming no live snapshot.
extension VMFixCommand.Fixer {
    mutating func checkSnapshots(_ home: String, _ file: VMSettingsFile, _ tx: Transaction) throws {
        guard mayHaveSnapshots(home, file) else { return }
        let vm = try SettingsResolver(paths: global.paths).loadVM(home: home, global: global)
        let snapshots = VMSnapshots(vm, environment: environment)
        let list = try snapshots.list()
        for s in list where !s.complete {
            issue("\(home): snapshot \(s.name) is on \(s.disks.joined(separator: ", ")) only; 'vmsnap -d' removes it")
        }
        let names = Set(list.map(\.name))
        for name in snapshots.directoryNames() where !names.contains(name) {
            let path = snapshots.directory(of: name)
            issue("\(home): \(path) belongs to no snapshot (no image holds \(name))")
            guard !checkOnly else { continue }
            try tx.moveAside(path)
            console.solved("\(path): removed")
        }
        let marker: String?
        do {
            marker = try snapshots.resumeMarker()
        } catch let e as VMToolsError {
            issue("\(home): \(e.description)")
            marker = ""
        }
        if let marker, !list.contains(where: { $0.name == marker && $0.live }) {
            if !marker.isEmpty { issue("\(home): \(snapshots.resumePath) names \(marker), which is not a live snapshot of the VM") }
            guard !checkOnly else { return }
            try tx.moveAside(snapshots.resumePath)
            console.solved("\(snapshots.resumePath): removed; the next start boots afresh")
        }
    }

    /// Cheap first look, so that VMs without snapshots cost no settings
    /// resolution: a `snapshots/` directory, or a qcow2 header of the VM's
    /// own disks or variable store counting snapshots.
    func mayHaveSnapshots(_ home: String, _ file: VMSettingsFile) -> Bool {
        if FileSystem.lexists(home.appendingPathComponent(VMSnapshots.directoryName)) { return true }
        let images = file.assignments.filter { SettingName.isStorageBackend($0.name) && !$0.value.isEmpty }
            .map { StorageBackend($0.value) }.filter { !$0.isRemote }.map { $0.path(home: home, environment: environment) }
        return (images + [home.appendingPathComponent(VMFileNames.firmwareVars)]).contains { image in
            FileSystem.isRegularFile(image) && (ImageProbe(image)?.qcow2SnapshotCount ?? 0) > 0
        }
    }
}
