#if canImport(Glibc)
import Glibc
#endif
import VMToolsCore

/// The stopped VM's side of `Snapshotter` (vmsnap(1), CRASH SAFETY):
/// `qemu-img snapshot` on each image, `tpm/` copied as files, every step
/// journaled in a `Transaction` anchored in the home, so that a killed
/// vmsnap is undone (create) or completed (revert, delete) by `vmfix -b`.
/// The caller holds the VM's lock.
extension Snapshotter {
    var tpmDirectory: String { vm.home.appendingPathComponent(VMFileNames.tpmDirectory) }

    /// The VM's TPM state when it has one to copy: a directory of its own,
    /// never a link (that could be anyone's state).
    var tpmState: String? {
        FileSystem.isDirectory(tpmDirectory) && !FileSystem.isSymlink(tpmDirectory) ? tpmDirectory : nil
    }

    /// Creation is undone by a crash: the journal says to delete the tag
    /// from each image before qemu-img makes it, and to remove the TPM copy
    /// and the directories made for it. `replacing` is deleted first, in a
    /// transaction of its own that rolls forward: a crash between the two
    /// leaves no snapshot of that name (vmsnap(1), -f).
    func createStopped(_ name: String, replacing: Snapshot?) throws -> Snapshot {
        if let replacing { try deleteStopped(replacing) }
        let tx = Transaction(anchor: vm.home, environment: environment)
        try journaled(tx) {
            try makeSnapshotDirectory(name, tx)
            try copyTPM(name, tx)
            // One record for all: undoing a tag an image does not hold yet is nothing.
            try tx.record(snapshots.capable.map { .deleteSnapshot(image: $0.path, tag: name) })
            try QemuImg.snapshot(.create, name, images: snapshots.capable.map(\.path), environment: environment)
        }
        guard let made = try snapshots.snapshot(name) else {
            throw VMToolsError(.failure, vm.home, "snapshot '\(name)' was made but cannot be read back")
        }
        return made
    }

    /// A revert rolls forward once it has begun: the TPM copy is staged in
    /// the backup directory, then every step is journaled before anything
    /// changes, so `vmfix -b` finishes an interrupted revert. A live
    /// snapshot leaves `snapshots/.resume` naming it for the next `vmup`;
    /// another revert removes the marker.
    func revertStopped(_ snapshot: Snapshot) throws {
        let name = snapshot.name
        let resume = snapshots.resumePath
        try FileSystem.refuseLink(resume)
        if snapshot.tpm { try FileSystem.checkOwnDirectory(tpmDirectory) }
        let tx = Transaction(anchor: vm.home, environment: environment)
        try journaled(tx) {
            var stagedTPM: String?
            if snapshot.tpm {
                let staged = try tx.backupPath(for: VMFileNames.tpmDirectory)
                try tx.record(.remove(staged))
                try SparseCopy.copyTree(snapshots.tpmCopy(of: name), to: staged)
                stagedTPM = staged
            }
            var stagedMarker: String?
            if snapshot.live {
                try FileSystem.checkOwnDirectory(snapshots.directory)
                try tx.makeDirectory(snapshots.directory)
                let staged = try tx.backupPath(for: VMSnapshots.resumeName)
                try tx.record(.remove(staged))
                try FileSystem.writeAtomically(Array((name + "\n").utf8), to: staged)
                stagedMarker = staged
            }
            // From here on the journal completes the revert: one record of
            // every step, so a crash never leaves a part of them to replay.
            var forward: [Transaction.Undo] = snapshots.capable.map { .applySnapshot(image: $0.path, tag: name) }
            if let stagedTPM { forward.append(.restore(backup: stagedTPM, original: tpmDirectory)) }
            if let stagedMarker {
                forward.append(.restore(backup: stagedMarker, original: resume))
            } else if FileSystem.lexists(resume) {
                forward.append(.remove(resume))
            }
            try tx.record(forward)

            try QemuImg.snapshot(.apply, name, images: snapshots.capable.map(\.path), environment: environment)
            if let stagedTPM {
                // The current state goes into the backup directory (gone at
                // the commit) and the staged copy takes its place: two renames.
                if FileSystem.lexists(tpmDirectory) { try FileSystem.rename(tpmDirectory, try tx.backupPath(for: "tpm.replaced")) }
                try FileSystem.rename(stagedTPM, tpmDirectory)
            }
            if let stagedMarker {
                try FileSystem.rename(stagedMarker, resume)
            } else if FileSystem.lexists(resume) {
                try FileSystem.removeFile(resume)
            }
        }
    }

    /// A deletion rolls forward too: every image's tag and
    /// `snapshots/NAME/` are journaled for removal before the first goes.
    func deleteStopped(_ snapshot: Snapshot) throws {
        let name = snapshot.name
        let own = snapshots.directory(of: name)
        // Never through a planted link: removing snapshots/NAME would remove another directory.
        try FileSystem.checkOwnDirectory(snapshots.directory)
        let marker = (try? snapshots.resumeMarker()) == name
        let tx = Transaction(anchor: vm.home, environment: environment)
        try journaled(tx) {
            let holding = snapshots.capable.filter { snapshot.disks.contains($0.label) }
            var forward: [Transaction.Undo] = holding.map { .deleteSnapshot(image: $0.path, tag: name) }
            if FileSystem.lexists(own) { forward.append(.remove(own)) }
            if marker { forward.append(.remove(snapshots.resumePath)) }
            try tx.record(forward)

            for disk in holding { try deleteTag(name, from: disk.path) }
            FileSystem.removeTree(own)
            FileSystem.syncDirectory(snapshots.directory)
            if marker { try FileSystem.removeFile(snapshots.resumePath) }
        }
    }

    /// Every tag `name` of one image: qemu-img deletes one at a time, and
    /// a tag made twice by hand would otherwise survive.
    func deleteTag(_ name: String, from image: String) throws {
        let count = try Qcow2SnapshotTable.read(image).filter { $0.name == name }.count
        for _ in 0..<count { try QemuImg.snapshot(.delete, name, image: image, environment: environment) }
    }

    /// `tpm/` copied to `snapshots/NAME/tpm/`, journaled; false when the VM
    /// has no TPM directory. A leftover copy (vmfix removes those) makes
    /// way, kept until the commit. swtpm writes its state by rename, so a
    /// copy taken while it runs (a live snapshot) holds whole files.
    @discardableResult
    func copyTPM(_ name: String, _ tx: Transaction) throws -> Bool {
        guard let tpm = tpmState else { return false }
        let copy = snapshots.tpmCopy(of: name)
        try tx.moveAside(copy)
        try tx.record(.remove(copy))
        try SparseCopy.copyTree(tpm, to: copy)
        FileSystem.syncDirectory(copy.deletingLastPathComponent)
        return true
    }

    /// `snapshots/` and `snapshots/NAME/`, journaled (removed again when
    /// empty), never through a planted link.
    func makeSnapshotDirectory(_ name: String, _ tx: Transaction) throws {
        try FileSystem.checkOwnDirectory(snapshots.directory)
        try tx.makeDirectory(snapshots.directory)
        try FileSystem.checkOwnDirectory(snapshots.directory(of: name))
        try tx.makeDirectory(snapshots.directory(of: name))
    }

    /// Runs `body` in `tx`: committed when it returns (and no Ctrl-C came),
    /// rolled back otherwise. A rollback that could not finish keeps the
    /// backup directory and says so (`vmfix -b` replays it).
    func journaled(_ tx: Transaction, _ body: () throws -> Void) throws {
        do {
            try body()
            try Interrupt.check()
            tx.commit()
        } catch {
            let failures = tx.rollback()
            if let first = failures.first, let dir = tx.backupDirectory {
                console.warning("\(vm.home): \(first); 'vmfix -b' finishes the job from \(dir)")
            }
            throw error
        }
    }
}
