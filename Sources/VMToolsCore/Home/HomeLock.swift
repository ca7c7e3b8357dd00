#if canImport(Glibc)
import Glibc
#endif

/// The lock on a VM home (vmtools(1) LOCKING), compatible with the original tool
/// and really exclusive.
///
/// The lock is the symbolic link `<dir>/.vm.settings.lock`, created with
/// `symlink(2)`, which fails when any link is there and never follows one.
/// Its target is `<dir>#<pid>@<host>`: that does not resolve to a directory,
/// so the original's `ln -s` fails on it as it should, and it names the owner.
///
/// While it holds the link, a vmtools process also holds an `flock` on the
/// directory. The kernel drops that when the process dies, so a link of ours
/// whose directory is not flocked was left by a dead process and is replaced
/// safely (under the flock, so two waiters cannot both break it). A link
/// written by the original (a bare path) carries no owner: it is honoured
/// until `cfg_limit_waitlock` runs out.
///
/// A home on read-only media, for the commands that only read it (vmup -s
/// or -r, vmfix -n), is locked in its `RuntimeDirectory` instead.
///
/// A command that changes nothing (vmfix -n) may take the lock *shared*: a
/// shared `flock` and no link (`acquire(shared:)`).
public final class HomeLock {
    public private(set) var directory: String
    public private(set) var lockPath: String
    /// The link's target; nil for a shared lock, which writes no link.
    private let target: String?
    private var fd: Int32
    /// Set for a read-only home: its run-time directory goes with the lock
    /// unless a QEMU runs from it.
    private var runtimeGlobal: GlobalConfig?

    public struct Owner: Equatable, Sendable {
        public var directory: String
        public var pid: Int32?
        public var host: String?

        public init(linkTarget: String) {
            if let hash = linkTarget.lastIndex(of: "#") {
                directory = String(linkTarget[..<hash])
                let rest = linkTarget[linkTarget.index(after: hash)...]
                if let at = rest.firstIndex(of: "@") {
                    pid = Int32(rest[..<at])
                    host = String(rest[rest.index(after: at)...])
                }
            } else {
                directory = linkTarget
            }
        }

        public var description: String {
            if let pid, let host { return "vmtools process \(pid) on \(host)" }
            return "another vmtools process (a lock without owner information)"
        }
    }

    /// Where the link and the flock are: the home, or its run-time directory.
    public var lockDirectory: String { lockPath.deletingLastPathComponent }

    private init(directory: String, lockPath: String, target: String?, fd: Int32, runtimeGlobal: GlobalConfig? = nil) {
        self.runtimeGlobal = runtimeGlobal
        self.directory = directory
        self.lockPath = lockPath
        self.target = target
        self.fd = fd
    }

    deinit { release() }

    /// Takes the lock on `directory` (canonical), waiting at most `wait` seconds.
    /// With `readOnlyHome`, a directory that is not writable is locked in
    /// its run-time directory.
    ///
    /// `shared` is for a caller that only reads (vmfix -n): a shared
    /// `flock` on the directory, taken only while no link is there, and no
    /// link written. Every vmtools lock holder keeps an exclusive `flock`,
    /// so none can hold or take the lock meanwhile; the original tool, which
    /// knows only the link, is waited for but not kept out while we read.
    /// That costs three cheap system calls instead of a `symlink` and an
    /// `unlink`, which write to the disk (Benchmarks/README.md, scale). A
    /// home that is not writable is locked as before, in its run-time
    /// directory.
    public static func acquire(_ directory: String, global: GlobalConfig, wait: Double? = nil,
                               console: Console? = nil, readOnlyHome: Bool = false, shared: Bool = false) throws -> HomeLock {
        let lockName = global.fileNames.lock
        let seconds = wait ?? Double(global.typed.waitLockSeconds)
        guard FileSystem.isDirectory(directory) else {
            throw VMToolsError(.failure, directory, "cannot lock: not a directory")
        }
        var lockDirectory = directory
        var shared = shared
        if !FileSystem.isWritable(directory) {
            guard readOnlyHome || shared else {
                throw VMToolsError(.failure, directory, "cannot lock: the directory is not writable")
            }
            lockDirectory = try RuntimeDirectory.prepare(home: directory)
            shared = false
        }
        let lockPath = lockDirectory.appendingPathComponent(lockName)
        let fd = open(lockDirectory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw VMToolsError(.failure, directory, "cannot lock: \(FileSystem.errnoMessage())")
        }
        let host = FileSystem.hostName()
        let target = "\(directory)#\(getpid())@\(host)"
        let deadline = SystemClock.now() + seconds
        var announced = false
        while true {
            if shared, flock(fd, LOCK_SH | LOCK_NB) == 0 {
                guard FileSystem.lexists(lockPath) else {
                    count(shared: true)
                    return HomeLock(directory: directory, lockPath: lockPath, target: nil, fd: fd)
                }
                // Our flock means no vmtools owner is alive: a link of ours
                // is stale. It is left for vmfix -l (a reader changes nothing).
                let owner = Owner(linkTarget: FileSystem.readLink(lockPath) ?? "")
                if owner.pid != nil, owner.host == host, owner.directory == directory {
                    console?.notice("'\(directory)': a stale lock left by \(owner.description), which is gone; left in place")
                    count(shared: true)
                    return HomeLock(directory: directory, lockPath: lockPath, target: nil, fd: fd)
                }
                flock(fd, LOCK_UN)
            } else if !shared, flock(fd, LOCK_EX | LOCK_NB) == 0 {
                if symlink(target, lockPath) == 0 {
                    count(shared: false)
                    return HomeLock(directory: directory, lockPath: lockPath, target: target, fd: fd,
                                    runtimeGlobal: lockDirectory == directory ? nil : global)
                }
                let e = errno
                if e != EEXIST {
                    close(fd)
                    throw VMToolsError(.failure, lockPath, "cannot create the lock: \(FileSystem.errnoMessage(e))")
                }
                // We hold the flock, so a lock of ours on this host has no live owner.
                if let existing = FileSystem.readLink(lockPath) {
                    let owner = Owner(linkTarget: existing)
                    if owner.pid != nil, owner.host == host, owner.directory == directory {
                        if unlink(lockPath) == 0, symlink(target, lockPath) == 0 {
                            count(shared: false)
                            console?.notice("'\(directory)': removed a stale lock left by \(owner.description), which is gone")
                            return HomeLock(directory: directory, lockPath: lockPath, target: target, fd: fd,
                                    runtimeGlobal: lockDirectory == directory ? nil : global)
                        }
                    }
                }
                flock(fd, LOCK_UN)
            }
            if SystemClock.now() >= deadline { break }
            if !announced {
                announced = true
                let who = FileSystem.readLink(lockPath).map { Owner(linkTarget: $0).description } ?? "another process"
                console?.progress("waiting up to \(Int(seconds)) s for the lock on '\(directory)' (held by \(who))")
            }
            SystemClock.sleep(0.1)
        }
        close(fd)
        let who = FileSystem.readLink(lockPath).map { Owner(linkTarget: $0) }
        var message = "locked by \(who?.description ?? "another process")"
        if let who, who.pid == nil, let age = FileSystem.mtime(lockPath) {
            message += ", since \(Int(SystemClock.wallSeconds()) - age) s"
        }
        message += "; if no vmtools command is working on it, 'vmfix -l \(shellQuote(directory))' removes the stale lock"
        throw VMToolsError(.failure, directory, message)
    }

    /// Removes the link if it is still ours, then drops the flock (in this
    /// order, so a waiter never sees our link without our flock).
    public func release() {
        guard fd >= 0 else { return }
        if let target, FileSystem.readLink(lockPath) == target { unlink(lockPath) }
        close(fd)
        fd = -1
        // A read-only home's lock lives in its run directory: remove that
        // directory too unless its QEMU runs.
        if let global = runtimeGlobal, PidFile.lockHolder(lockDirectory.appendingPathComponent(global.fileNames.pid)) == nil {
            RuntimeDirectory.removeIfUnused(lockDirectory, global: global)
        }
    }

    /// Follows the directory after a rename: the link and the flocked
    /// inode went along with it.
    public func relocate(to newDirectory: String) {
        directory = newDirectory
        lockPath = newDirectory.appendingPathComponent(lockPath.lastPathComponent)
    }

    public var isHeld: Bool { fd >= 0 && (target == nil || FileSystem.readLink(lockPath) == target) }

    /// Whether this lock is shared (no link).
    public var isShared: Bool { target == nil }

    /// Locks taken by `countingAcquisitions`' body.
    package struct Acquisitions: Equatable, Sendable {
        /// With a link (exclusive).
        package var exclusive = 0
        package var shared = 0
    }

    /// Runs `body` counting the locks it takes on this thread: a test proves
    /// with it that `vmfix -rAn` locks each VM at most once and writes no
    /// link (Benchmarks/README.md, scale). A thread check as in
    /// `FileSystem.countingListings`, for the same reason.
    package static func countingAcquisitions<T>(_ body: () throws -> T) rethrows -> (T, Acquisitions) {
        acquisitions = Acquisitions()
        countingThread = pthread_self()
        defer { countingThread = nil }
        return (try body(), acquisitions)
    }

    nonisolated(unsafe) private static var countingThread: pthread_t?
    nonisolated(unsafe) private static var acquisitions = Acquisitions()

    private static func count(shared: Bool) {
        guard let t = countingThread, pthread_equal(t, pthread_self()) != 0 else { return }
        if shared { acquisitions.shared += 1 } else { acquisitions.exclusive += 1 }
    }
}
