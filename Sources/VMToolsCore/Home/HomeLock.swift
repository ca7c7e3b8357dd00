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
public final class HomeLock {
    public private(set) var directory: String
    public private(set) var lockPath: String
    private let target: String
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

    private init(directory: String, lockPath: String, target: String, fd: Int32, runtimeGlobal: GlobalConfig? = nil) {
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
    public static func acquire(_ directory: String, global: GlobalConfig, wait: Double? = nil,
                               console: Console? = nil, readOnlyHome: Bool = false) throws -> HomeLock {
        let lockName = global.fileNames.lock
        let seconds = wait ?? Double(global.typed.waitLockSeconds)
        guard FileSystem.isDirectory(directory) else {
            throw VMToolsError(.failure, directory, "cannot lock: not a directory")
        }
        var lockDirectory = directory
        if !FileSystem.isWritable(directory) {
            guard readOnlyHome else {
                throw VMToolsError(.failure, directory, "cannot lock: the directory is not writable")
            }
            lockDirectory = try RuntimeDirectory.prepare(home: directory)
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
            if flock(fd, LOCK_EX | LOCK_NB) == 0 {
                if symlink(target, lockPath) == 0 {
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
        if FileSystem.readLink(lockPath) == target { unlink(lockPath) }
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

    public var isHeld: Bool { fd >= 0 && FileSystem.readLink(lockPath) == target }
}
