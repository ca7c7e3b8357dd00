import VMToolsCore

/// The firmware variable store and the TPM state of a clone (vmfork(1),
/// vmcp(1), vm.settings(5) FIRMWARE AND TPM OF CLONES).
///
/// The store is always copied, never linked or overlaid: the parent's store
/// is not protected like its disks (the firmware module recreates it from
/// the template when it is missing), and it is only a few hundred KB.
/// The TPM state is copied by a copy and by `vmfork -k`; a plain fork gets a
/// fresh TPM on its first start, like a new MAC and UUID: forks run side by
/// side and must not share one endorsement key.
extension Cloner.Run {
    func cloneFirmwareState(from src: String, to home: String, action: CloneJob.Action) throws {
        let store = src.appendingPathComponent(VMFileNames.firmwareVars)
        if FileSystem.isRegularFile(store) {
            let dest = home.appendingPathComponent(VMFileNames.firmwareVars)
            try tx.record(.remove(dest))
            if action == .fork && VMSnapshots.headerCount(store) > 0 {
                // A fork starts with no snapshots (vmfork(1)): a converted store holds none.
                try QemuImg.convertAtomically(store, format: "qcow2", to: dest, environment: cloner.environment)
            } else {
                try SparseCopy.copy(store, to: dest)
            }
        }
        let tpm = src.appendingPathComponent(VMFileNames.tpmDirectory)
        guard FileSystem.isDirectory(tpm), !FileSystem.isSymlink(tpm) else { return }
        guard action != .fork || cloner.options.keepUnique else {
            // A guest that sealed a secret to the source's TPM asks for its recovery key here.
            cloner.console.notice("\(home): gets a fresh TPM, not the state of \(src)'s ('vmfork -k' copies it)")
            return
        }
        let dest = home.appendingPathComponent(VMFileNames.tpmDirectory)
        try tx.record(.remove(dest))
        try SparseCopy.copyTree(tpm, to: dest)
        FileSystem.syncDirectory(home)
    }
}

extension Cloner.Run {
    /// `<home>/tpm` or `<home>/snapshots` of a VM home, or anything below them.
    func isTPMState(_ dir: String) -> Bool {
        var d = dir
        while d.count > source.count {
            if d.lastPathComponent == VMFileNames.tpmDirectory || d.lastPathComponent == VMSnapshots.directoryName,
               VMHome.isHome(d.deletingLastPathComponent, global: global) { return true }
            d = d.deletingLastPathComponent
        }
        return false
    }
}
