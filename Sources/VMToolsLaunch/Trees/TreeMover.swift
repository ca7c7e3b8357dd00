import VMToolsCore

#if canImport(Glibc)
import Glibc
#endif

/// Moves a VM home with everything below it inside a caller's transaction
/// (vmmv(1) "Effects"): first every link into the directory is
/// rewritten — settings, child lists, qcow2 backing paths, children living
/// elsewhere, the parent's list — then one `rename(2)` moves it.
/// `vmmv` uses it, and `vmmerge` to bring children up a level.
package final class TreeMover {
    let global: GlobalConfig
    let locks: LockSet
    let tx: Transaction
    let environment: [String: String]
    /// Renames done, to point the locks back if the transaction rolls back.
    private var done: [PathTranslation] = []
    /// The moved VMs that rest on a cached image: listed at their new
    /// homes before the rename, unlisted at the old ones after the commit.
    let imageUsers: ImageUserChanges

    package init(global: GlobalConfig, locks: LockSet, tx: Transaction, environment: [String: String]) {
        self.global = global
        self.locks = locks
        self.tx = tx
        self.environment = environment
        imageUsers = ImageUserChanges(global: global, environment: environment)
    }

    /// `dest` must be free (absent or an empty directory, which is replaced).
    /// With `updateParent` false the caller relinks the parent itself.
    package func move(_ source: String, to dest: String, updateParent: Bool = true) throws {
        let t = PathTranslation(from: source, to: dest)
        // Locks: the directory and all below it, every descendant, the parent.
        let below = FileSystem.subdirectories(source)
        for dir in [source] + below { try locks.lock(dir, whatFor: "a running VM cannot be moved") }
        let vms = ([source] + below).filter { VMHome.isHome($0, global: global) }
        var outside: [String] = []
        for vm in vms {
            for child in try ChildList.read(home: vm, global: global).children
            where !t.applies(to: child) && VMHome.isHome(child, global: global) && !outside.contains(child) {
                try locks.lock(child, whatFor: "its parent moves")
                outside.append(child)
            }
        }
        let parent = try VMSettingsFile.read(global.settingsPath(in: source)).parent
        let relinkParent = updateParent && parent.map { VMHome.isHome($0, global: global) && !t.applies(to: $0) } ?? false
        if relinkParent, let parent { try locks.lock(parent, allowRunning: true) }

        // Read before the relinking rewrites their storage paths to where they are not yet.
        for vm in vms { try imageUsers.willMove(vm, to: t(vm)) }
        let relink = Relinker(global: global, tx: tx, environment: environment)
        for vm in vms {
            try relink.translateVM(at: vm, t, rename: vm == source ? (source.lastPathComponent, dest.lastPathComponent) : nil)
            try relink.translateChildList(in: vm, t)
        }
        for child in outside { try relink.translateVM(at: child, t) }
        if relinkParent, let parent { try relink.updateChildList(in: parent, remove: source, add: dest) }
        if FileSystem.isDirectory(dest) { try tx.moveAside(dest) }  // an empty directory is replaced
        if FileSystem.device(source) == FileSystem.device(dest.deletingLastPathComponent) {
            try tx.rename(source, to: dest)
        } else {
            // Another filesystem: copy everything (sparse, synced), and only
            // then move the source aside; the commit deletes it.
            try copyTree(source, to: dest)
            try tx.moveAside(source)
        }
        locks.moved(t)
        done.append(t)
    }

    /// A copy of the directory tree, each file and directory recorded for undo.
    /// Lock links are not copied: they belong to the source's locks. Nor are
    /// work files (vmmv(1)): only a rename keeps them, and the commit
    /// deletes them with the source.
    private func copyTree(_ from: String, to: String) throws {
        try tx.makeDirectory(to)
        chmod(to, FileSystem.mode(from) ?? 0o755)
        let lockName = global.fileNames.lock
        let isHome = VMHome.isHome(from, global: global)
        for entry in try FileSystem.listDirectory(from).sorted(by: bytewiseLess) where !(isHome && global.fileNames.isWork(entry)) {
            let src = from.appendingPathComponent(entry), dst = to.appendingPathComponent(entry)
            if FileSystem.isSymlink(src) {
                guard entry != lockName, let target = FileSystem.readLink(src) else { continue }
                try tx.record(.remove(dst))
                guard symlink(target, dst) == 0 else { throw VMToolsError(.failure, dst, "cannot create: \(FileSystem.errnoMessage())") }
            } else if FileSystem.isDirectory(src) {
                try copyTree(src, to: dst)
            } else if FileSystem.isRegularFile(src) {
                try tx.record(.remove(dst))
                try SparseCopy.copy(src, to: dst)
            }
            // Sockets and other special files are run-time leftovers: not copied.
        }
        FileSystem.syncDirectory(to)
    }

    func undoLockMoves() {
        for t in done.reversed() { locks.moved(PathTranslation(from: t.to, to: t.from)) }
        done.removeAll()
    }
}
