import VMToolsCore

extension VMMergeCommand.Merge {
    /// The firmware variable store and the TPM state follow the settings
    /// (vmmerge(1), vm.settings(5) FIRMWARE AND TPM OF CLONES): the merged
    /// child's own win in its parent (`replace`, -p); a child that has none
    /// gets a copy of the merged parent's (-c).
    func mergeFirmwareState(from src: String, into dst: String, replace: Bool, _ tx: Transaction) throws {
        for name in [VMFileNames.firmwareVars, VMFileNames.tpmDirectory] {
            let from = src.appendingPathComponent(name), to = dst.appendingPathComponent(name)
            guard FileSystem.exists(from) else { continue }
            if replace {
                // The parent's snapshots cover its store: it takes in the child's data instead (vmmerge(1) SNAPSHOTS).
                if name == VMFileNames.firmwareVars, try mergeVarsKeepingSnapshots(from: from, into: to, tx) { continue }
                try tx.moveAside(to)
                try tx.rename(from, to: to)
            } else if !FileSystem.lexists(to) {
                try tx.record(.remove(to))
                if FileSystem.isDirectory(from) { try SparseCopy.copyTree(from, to: to) } else { try SparseCopy.copy(from, to: to) }
            }
        }
    }
}
