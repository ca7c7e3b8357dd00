import VMToolsCore

/// `vm_snapshot_auto=grow` (vm.settings(5)): the VM's disks as they were,
/// kept as a snapshot before `qemu-img resize` grows one. Not undone when
/// the start fails later: the disk stays grown, and the snapshot is what
/// it was before.
extension Preparation {
    func snapshotBeforeGrowing() throws {
        guard let home = command.home else { return }
        let global = command.global
        // The settings this start uses (its -o included), on the VM as loaded.
        var vm = try SettingsResolver(paths: global.paths).loadVM(home: home, global: global)
        vm.settings = command.settings
        let snapshot = try Snapshotter(vm: vm, global: global, environment: command.environment, console: console).createAutomatic(.grow)
        console.notice("took snapshot \(snapshot.name) of \(home) before growing its disks (\(SettingKey.snapshotAuto))")
    }
}

extension LaunchPlan {
    /// `-n`: the snapshot a start would take before growing a disk.
    var snapshotDryRunLines: [String] {
        snapshotBeforeGrowing && !disksToGrow.isEmpty
            ? ["would take a snapshot auto-grow-YYYYMMDD-HHMMSS of the VM before growing its disks (\(SettingKey.snapshotAuto))"] : []
    }
}
