import VMToolsCore

#if canImport(Glibc)
import Glibc
#endif

/// `vmfix -s` on the firmware variable store and the TPM state
/// (vmfix(1), vm.settings(5) FIRMWARE AND TPM OF CLONES).
extension VMFixCommand.Fixer {
    mutating func checkFirmwareState(_ home: String, _ tx: Transaction) throws {
        try checkFirmwareStore(home, tx)
        try checkTPMState(home, tx)
    }

    /// A store that is not a qcow2 (cut short, overwritten) keeps the VM
    /// from starting: it goes, and the next start makes a new one from the
    /// template. A damaged qcow2 is repaired by `qemu-img check -r all`.
    /// One shared with another file (a link) becomes the VM's own copy.
    mutating func checkFirmwareStore(_ home: String, _ tx: Transaction) throws {
        let path = home.appendingPathComponent(VMFileNames.firmwareVars)
        guard FileSystem.lexists(path) else { return }
        var st = stat()
        let valid = stat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFREG && ImageFormat.detect(path) == "qcow2"
        guard valid else {
            issue("\(home): the firmware variable store \(path) is not a qcow2 image")
            guard !checkOnly else { return }
            try tx.moveAside(path)
            console.solved("\(path): removed; the next UEFI start makes a new one from the firmware's template (its variables are lost)")
            return
        }
        if FileSystem.isSymlink(path) || st.st_nlink > 1 {
            issue("\(home): the firmware variable store \(path) is shared with another file (\(FileSystem.isSymlink(path) ? "a symbolic link" : "a hard link"))")
            try makeOwnCopy(path, tx) { try SparseCopy.copy($0, to: $1) }
        }
        // Made 0644 before vmtools 0.1.0's store became private: UEFI variables can hold keys and passwords.
        if let mode = FileSystem.mode(path), mode & 0o077 != 0, !FileSystem.isSymlink(path) {
            issue("\(home): the firmware variable store \(path) is readable by others")
            if !checkOnly {
                chmod(path, mode & 0o7700)
                console.solved("\(path): only its owner may read it now")
            }
        }
        let exe = try QemuImg.executable(path, environment: environment, purpose: "cannot check the firmware variable store")
        let check = try Subprocess(exe, ["check", "-q", "-f", "qcow2", "--", path]).run()
        // 0: clean; 3: leaked clusters only, harmless.
        guard check.status != 0 && check.status != 3 else { return }
        issue("\(home): the firmware variable store \(path) is damaged (qemu-img check: exit status \(check.status))")
        guard !checkOnly else { return }
        let repair = try Subprocess(exe, ["check", "-q", "-r", "all", "-f", "qcow2", "--", path]).run()
        if repair.status == 0 || repair.status == 3 {
            console.solved("\(path): repaired (qemu-img check -r all)")
        } else {
            try tx.moveAside(path)
            console.solved("\(path): could not be repaired, removed; the next UEFI start makes a new one from the firmware's template")
        }
    }

    /// The TPM's state holds its private keys: only the user may read it,
    /// and it must be the VM's own directory.
    mutating func checkTPMState(_ home: String, _ tx: Transaction) throws {
        let path = home.appendingPathComponent(VMFileNames.tpmDirectory)
        guard FileSystem.lexists(path) else { return }
        guard FileSystem.isDirectory(path) else {
            issue("\(home): the TPM state \(path) is not a directory")
            failed(VMToolsError(.failure, path, "cannot repair: move it away and the next start makes a fresh TPM (the guest's sealed secrets are lost)"))
            return
        }
        if FileSystem.isSymlink(path) {
            issue("\(home): the TPM state \(path) is shared with another directory (a symbolic link)")
            try makeOwnCopy(path, tx) { try SparseCopy.copyTree($0, to: $1) }
        }
        var open: [String] = []
        for p in [path] + FileSystem.subdirectories(path) + filesBelow(path) where (FileSystem.mode(p) ?? 0) & 0o077 != 0 {
            open.append(p)
        }
        guard !open.isEmpty else { return }
        issue("\(home): the TPM state is readable by others: \(open.joined(separator: ", "))")
        guard !checkOnly else { return }
        for p in open { chmod(p, (FileSystem.mode(p) ?? 0o600) & 0o7700) }
        console.solved("\(path): only its owner may read it now")
    }

    /// A file or directory shared through a link becomes the VM's own copy,
    /// made beside it and renamed over it under the journal.
    mutating func makeOwnCopy(_ path: String, _ tx: Transaction, _ copy: (String, String) throws -> Void) throws {
        guard !checkOnly else { return }
        let own = path + ".vmfix"
        try tx.record(.remove(own))
        try copy(path, own)
        try tx.moveAside(path)
        try tx.rename(own, to: path)
        console.solved("\(path): now the VM's own copy")
    }

    func filesBelow(_ dir: String) -> [String] {
        ([dir] + FileSystem.subdirectories(dir)).flatMap { d in
            ((try? FileSystem.listDirectory(d)) ?? []).map { d.appendingPathComponent($0) }.filter { FileSystem.isRegularFile($0) && !FileSystem.isSymlink($0) }
        }
    }
}
