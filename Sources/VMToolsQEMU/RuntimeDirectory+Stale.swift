import VMToolsCore

#if canImport(Glibc)
import Glibc
#endif

// Needs RunningState (this layer), so not in VMToolsCore with the rest of RuntimeDirectory.
extension RuntimeDirectory {
    /// Removes the directories of bare boots whose QEMU is gone: none holds
    /// the lock on its pid file, and no vmup is setting it up (a vmup holds
    /// an flock on the directory until QEMU runs; a directory without a pid
    /// file is left alone for a minute, in case its vmup has not taken the
    /// flock yet).
    package static func removeStale(global: GlobalConfig) {
        let dir = base
        let pidName = global.fileNames.pid
        for name in (try? FileSystem.listDirectory(dir)) ?? [] where name.hasPrefix("bare-") {
            let path = dir.appendingPathComponent(name)
            guard isOwnRunDirectory(path) else { continue }
            let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { continue }
            let pidFile = path.appendingPathComponent(pidName)
            if RunningState.process(pidFile: pidFile) != nil { continue }
            let age = Int(SystemClock.wallSeconds()) - (FileSystem.mtime(path) ?? 0)
            if FileSystem.lexists(pidFile) || age > 60 { FileSystem.removeTree(path) }
        }
    }
}
