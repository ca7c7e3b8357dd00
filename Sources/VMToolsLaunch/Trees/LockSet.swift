import VMToolsCore
import VMToolsQEMU

/// The locks one tree operation holds (vmtools(1) LOCKING), each taken once
/// and all released together. Taking a lock on a VM home also checks that
/// no QEMU runs from it: a running VM's disks are never changed.
public final class LockSet {
    let global: GlobalConfig
    let console: Console
    private(set) var locks: [String: HomeLock] = [:]
    /// For a check that changes nothing: a home on read-only media is
    /// locked in its run-time directory (`HomeLock`).
    package var readOnlyHomes = false
    /// For a check that changes nothing: shared locks, no links (`HomeLock`).
    package var shared = false

    public init(global: GlobalConfig, console: Console) {
        self.global = global
        self.console = console
    }

    deinit { releaseAll() }

    @discardableResult
    public func lock(_ directory: String, whatFor: String? = nil, allowRunning: Bool = false) throws -> HomeLock {
        if let held = locks[directory] { return held }
        try Interrupt.check()
        let lock = try HomeLock.acquire(directory, global: global, console: console, readOnlyHome: readOnlyHomes, shared: shared)
        if !allowRunning, let p = RunningState.process(home: directory, global: global) {
            lock.release()
            throw VMToolsError(.failure, directory, "is running (pid \(p.pid)); stop it first (vmdown)" + (whatFor.map { ", \($0)" } ?? ""))
        }
        locks[directory] = lock
        return lock
    }

    /// The lock must be held already (it guards what is written there).
    public func requireHeld(_ directory: String) throws {
        guard let l = locks[directory], l.isHeld else {
            throw VMToolsError(.failure, directory, "internal error: changed without holding its lock")
        }
    }

    /// After `from` was renamed to `to`: the locks inside it moved along.
    public func moved(_ t: PathTranslation) {
        for (dir, l) in locks where t.applies(to: dir) {
            locks.removeValue(forKey: dir)
            l.relocate(to: t(dir))
            locks[t(dir)] = l
        }
    }

    /// Releases the locks on the directories `drop` names, keeping the others.
    package func release(where drop: (String) -> Bool) {
        for (dir, l) in locks where drop(dir) {
            l.release()
            locks.removeValue(forKey: dir)
        }
    }

    public func releaseAll() {
        for l in locks.values { l.release() }
        locks.removeAll()
    }
}

/// Maps paths from an old home to a new one, component-wise
/// (vmmv(1)): `/a/bc` is not below `/a/b`.
public struct PathTranslation: Sendable {
    public var from: String
    public var to: String

    public init(from: String, to: String) {
        self.from = from
        self.to = to
    }

    public func callAsFunction(_ path: String) -> String {
        if path == from { return to }
        if FileSystem.isWithin(path, from) { return to + path.dropFirst(from.count) }
        return path
    }

    public func applies(to path: String) -> Bool { FileSystem.isWithin(path, from) }
}

extension Transaction {
    /// Runs `body` as this transaction holding `locks`: committed when it
    /// returns (unless Ctrl-C came meanwhile), rolled back on any error;
    /// the locks are released either way, after the rollback. The image
    /// users lists (`ImageUserChanges`, the mover's and `users`) are
    /// finished after the commit or undone after the rollback.
    package func run<T>(holding locks: LockSet, mover: TreeMover? = nil, users: ImageUserChanges? = nil,
                        _ body: () throws -> T) throws -> T {
        do {
            let result = try body()
            try Interrupt.check()
            commit()
            mover?.imageUsers.committed(console: locks.console)
            users?.committed(console: locks.console)
            locks.releaseAll()
            return result
        } catch {
            rollback()
            mover?.undoLockMoves()
            mover?.imageUsers.rolledBack()
            users?.rolledBack()
            locks.releaseAll()
            throw error
        }
    }
}
