#if canImport(Glibc)
import Glibc
#endif

/// QEMU's `-pidfile`, which QEMU keeps locked (a POSIX write lock) while it
/// runs: vmtools(1) LOCKING.
public enum PidFile {
    /// The pid of the process holding the lock on `path`, or nil.
    public static func lockHolder(_ path: String) -> Int32? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) // a FIFO must not block
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = 0
        lock.l_len = 0
        guard fcntl(fd, F_GETLK, &lock) == 0, lock.l_type != Int16(F_UNLCK), lock.l_pid > 0 else { return nil }
        return lock.l_pid
    }
}
