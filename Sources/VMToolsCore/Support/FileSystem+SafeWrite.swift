import CSystem

#if canImport(Glibc)
import Glibc
#endif

/// Writing in a VM home that came from elsewhere (vmtools(7), SECURITY): a
/// name vmtools or a helper writes may be a symbolic link planted by whoever
/// made the directory, and must never lead the write outside it.
extension FileSystem {
    /// Refuses a symbolic link at a name vmtools (or a helper it starts)
    /// writes: following it would change, or create, a file outside the home.
    package static func refuseLink(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFLNK else { return }
        throw plantedLink(path)
    }

    package static func plantedLink(_ path: String) -> VMToolsError {
        VMToolsError(.failure, path, "refusing a symbolic link where vmtools writes a file of its own; remove it")
    }

    /// A directory vmtools or a helper writes into (a TPM's state, the TFTP
    /// directory): absent, or a real directory (not a link) of ours.
    package static func checkOwnDirectory(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        switch st.st_mode & S_IFMT {
        case S_IFLNK: throw plantedLink(path)
        case S_IFDIR:
            guard st.st_uid == geteuid() else {
                throw VMToolsError(.failure, path, "refusing to write into a directory owned by another user (uid \(st.st_uid))")
            }
        default: throw VMToolsError(.failure, path, "refusing to write into it: not a directory")
        }
    }

    /// Creates `path` afresh, never through a link and never over anything
    /// already there, `mode` whatever the umask; for a helper to write into
    /// (it keeps an existing file's mode).
    package static func createExclusive(_ path: String, mode: mode_t) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else {
            let e = errno
            if isSymlink(path) { throw plantedLink(path) }
            throw VMToolsError(.failure, path, "cannot create: \(errnoMessage(e))")
        }
        fchmod(fd, mode)
        close(fd)
    }

    /// A new empty file beside `path` (`.NAME.tmp.XXXXXX`, made with
    /// O_EXCL), `mode` whatever the umask: a helper writes into it, and it
    /// is renamed over `path`, which replaces a link there rather than
    /// following it. vmfix(1) -d knows these names.
    package static func createExclusiveTemporary(beside path: String, mode: mode_t) throws -> String {
        let (fd, tmp) = try openTemporary(beside: path)
        fchmod(fd, mode)
        close(fd)
        return tmp
    }

    /// `.NAME.tmp.XXXXXX` beside `path`, made by mkostemp (O_EXCL, so never
    /// through a link): its descriptor and name.
    static func openTemporary(beside path: String) throws -> (fd: Int32, path: String) {
        let dir = path.deletingLastPathComponent
        var template = Array(dir.appendingPathComponent(".\(path.lastPathComponent).tmp.XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { csystem_mkostemp_cloexec($0.baseAddress!) }
        guard fd >= 0 else {
            throw VMToolsError(.failure, path, "cannot create a temporary file in \(dir): \(errnoMessage())")
        }
        return (fd, string(fromNulTerminated: template))
    }

    /// Whether `name` is one of the temporary files `writeAtomically` and
    /// `createExclusiveTemporary` make (`.NAME.tmp.XXXXXX`): debris once the
    /// command that made it is gone.
    package static func isTemporaryName(_ name: String) -> Bool {
        let b = Array(name.utf8), n = b.count
        guard n > 12, b[0] == UInt8(ascii: "."), Array(b[(n - 11)..<(n - 6)]) == Array(".tmp.".utf8) else { return false }
        return b[(n - 6)...].allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) }
    }

    /// `path` opened for writing (created `mode`, whatever the umask, if
    /// missing) without following a link; an existing file is made `mode`.
    /// For a log QEMU appends to: it keeps the mode of an existing file.
    package static func createPrivate(_ path: String, mode: mode_t = 0o600) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode)
        guard fd >= 0 else {
            let e = errno
            if e == ELOOP || isSymlink(path) { throw plantedLink(path) }
            throw VMToolsError(.failure, path, "cannot create: \(errnoMessage(e))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw VMToolsError(.failure, path, "refusing to write into it: not a regular file")
        }
        fchmod(fd, mode)
    }
}
