/// When vmtools takes a snapshot by itself (vm.settings(5), `vm_snapshot_auto`).
public enum SnapshotAuto: String, Sendable, CaseIterable {
    /// Before `vmmerge` changes the VM's disks.
    case merge
    /// Before `vmup` grows a disk.
    case grow
}

extension VMSettings {
    /// `vm_snapshot_auto`: a space-separated list of `merge` and `grow`.
    public func snapshotAuto() throws -> Set<SnapshotAuto> {
        var set: Set<SnapshotAuto> = []
        for word in table.value(SettingKey.snapshotAuto).split(whereSeparator: { $0 == " " || $0 == "\t" }) {
            guard let a = SnapshotAuto(rawValue: String(word)) else {
                throw invalid(SettingKey.snapshotAuto, "expected a space-separated list of merge and grow")
            }
            set.insert(a)
        }
        return set
    }
}
