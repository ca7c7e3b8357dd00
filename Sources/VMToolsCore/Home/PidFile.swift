#if canImport(Glibc)
import Glibc
#endif

/// QEMU's `-pidfile`, which QEMU keeps locked (a POSIX write lock) while it
/// runs: vmtools(1) LOCKING.
public enum PidFile {
    public enum Probe: Equatable {
        /// No file to open.
        case absent
        case unlocked
        case lockedBy(Int32)
    }

    /// The pid of the process holding the lock on `path`, or nil.
    public static func lockHolder(_ path: String) -> Int32? {
        if case let .lockedBy(pid) = probe(path) { return pid }
        return nil
    }

    public static func probe(_ path: String) -> Probe {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) // a FIFO must not block
        guard fd >= 0 else { return .absent }
        defer { close(fd) }
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = 0
        lock.l_len = 0
        guard fcntl(fd, F_GETLK, &lock) == 0, lock.l_type != Int16(F_UNLCK), lock.l_pid > 0 else { return .unlocked }
        return .lockedBy(lock.l_pid)
    }
}
