import VMToolsCore

/// `vm_storage_hddN_size` (vm.settings(5)): an existing disk grows to it before
/// QEMU starts, read from the image's header here, done by `LaunchExecutor`.
extension StorageHddModule {
    /// The size a new disk is made with: the larger of createsize and size.
    static func creationSize(_ c: QemuCommand, _ disk: VMSettings.Drive, createsize: String) throws -> String {
        guard let want = try disk.size(), let bytes = want.bytes, let made = Size(createsize, units: "MGT")?.bytes else { return createsize }
        if bytes < made {
            throw c.invalid(disk.keys.size, "smaller than \(disk.keys.createsize)=\(createsize); a disk is never shrunk")
        }
        return want.text
    }

    /// Plans the growth of the existing disk at `path` to its size setting.
    /// Never shrinks; never grows a disk a fork's disk has as backing file
    /// (the fork would see a different disk). A fork's own overlay may grow:
    /// its backing file is left as it is.
    static func planGrowth(_ c: inout QemuCommand, _ disk: VMSettings.Drive, path: String, mode: Mode) throws {
        guard let want = try disk.size() else { return }
        let key = disk.keys.size
        guard let wanted = want.bytes else { throw c.invalid(key, "too large") }
        let format = ImageFormat.detect(path) ?? "raw"
        guard format == "qcow2" || format == "raw" else {
            throw c.invalid(key, "\(path) is a \(format) image: only qcow2 and raw disks can grow (convert it to qcow2)")
        }
        guard let current = ImageFormat.virtualSize(path) else { throw c.invalid(key, "cannot read the size of \(path)") }
        let text = LaunchPlan.DiskToGrow.text
        if wanted == current { return }
        if wanted < current {
            throw c.invalid(key, "\(path) is \(text(current)), larger than \(text(wanted)); a disk is never shrunk")
        }
        // Not grown in snapshot or read-only mode, so a base with forks still starts with -s.
        guard mode == .rw else {
            c.notices.append("\(key)=\(want) not applied: \(path) is used in \(mode == .snap ? "snapshot" : "read-only") mode")
            return
        }
        if let fork = dependentFork(of: path, children: c.children, global: c.global, environment: c.environment) {
            throw c.invalid(key, "cannot grow \(path): the fork \(fork) uses it as its backing file")
        }
        try planSnapshotBeforeGrowing(&c)
        c.plan.disksToGrow.append(.init(path: path, format: format, from: current, to: wanted))
    }

    /// `vm_snapshot_auto=grow` (vm.settings(5)): the start takes a snapshot
    /// before it grows a disk; a VM whose disks cannot all hold one is
    /// refused here, so `vmup -n` says so too.
    static func planSnapshotBeforeGrowing(_ c: inout QemuCommand) throws {
        guard !c.export, !c.plan.snapshotBeforeGrowing, let home = c.home,
              try VMSettings(c.settings).snapshotAuto().contains(.grow) else { return }
        let disks = VMSnapshots.disks(of: VMSettings(c.settings), home: home, environment: c.environment)
        if let why = disks.first(where: { $0.refusal != nil })?.refusalMessage {
            throw c.invalid(SettingKey.snapshotAuto, "no snapshot can be taken before a disk grows: \(why)")
        }
        c.plan.snapshotBeforeGrowing = true
    }

    /// The first child whose own disks have `path` in their backing chain.
    static func dependentFork(of path: String, children: [String], global: GlobalConfig, environment: [String: String]) -> String? {
        let target = FileSystem.realPath(path) ?? path
        for child in children {
            let file = global.settingsPath(in: child)
            guard let settings = try? VMSettingsFile.read(file) else { continue }
            for (name, value) in settings.assignments where SettingName.isStorageBackend(name) && !value.isEmpty {
                let b = StorageBackend(value)
                guard !b.isRemote else { continue }
                var image: String? = b.path(home: child, environment: environment)
                for _ in 0..<64 {
                    guard let i = image else { break }
                    if (FileSystem.realPath(i) ?? i) == target { return child }
                    image = ImageFormat.qcow2Backing(i)
                }
            }
        }
        return nil
    }
}
