#if canImport(Glibc)
import Glibc
#endif

/// Reading: whole files and the descriptors images are read through.
extension FileSystem {
    /// Up to `count` bytes of an open file from `offset` (fewer where it
    /// ends), into a buffer nothing zero-fills; nil on a read error.
    package static func readBytes(_ fd: Int32, at offset: Int, count: Int) -> [UInt8]? {
        var failed = false
        let bytes = [UInt8](unsafeUninitializedCapacity: max(count, 0)) { buffer, initialized in
            let n = count > 0 ? pread(fd, buffer.baseAddress, count, off_t(offset)) : 0
            failed = n < 0
            initialized = max(n, 0)
        }
        return failed ? nil : bytes
    }

    /// Whole file as bytes. `limit` guards against reading a huge or endless file.
    /// Only regular files are read: `O_NONBLOCK` keeps `open` of a FIFO from
    /// waiting forever for a writer, and `fstat` refuses it and devices.
    package static func readBytes(_ path: String, limit: Int = 16 << 20) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw VMToolsError(.failure, path, "cannot read: \(errnoMessage())") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw VMToolsError(.failure, path, "cannot read: \(errnoMessage())") }
        if let kind = fileKind(st.st_mode) {
            throw VMToolsError(.failure, path, "is \(kind), not a regular file; refusing to read it")
        }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw VMToolsError(.failure, path, "cannot read: \(errnoMessage())")
            }
            if n == 0 { break }
            result.append(contentsOf: chunk[0..<n])
            if result.count > limit {
                throw VMToolsError(.failure, path, "file is too large (more than \(limit >= 1 << 20 ? "\(limit >> 20) MiB" : "\(limit >> 10) KiB"))")
            }
        }
        return result
    }

    /// Opens a file vmtools reads data from (an image, its header, an
    /// archive): only a regular file or a block device. `O_NONBLOCK`, so that
    /// `open` of a FIFO never waits for a writer; `fstat` on the descriptor
    /// then decides, so a file swapped after a check cannot slip through.
    /// `noFollow` refuses a symbolic link as the last component.
    package static func openForReading(_ path: String, noFollow: Bool = false) throws -> Int32 {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (noFollow ? O_NOFOLLOW : 0))
        guard fd >= 0 else {
            let e = errno
            throw VMToolsError(.failure, path, e == ELOOP && noFollow ? "is a symbolic link; refusing to follow it" : "cannot read: \(errnoMessage(e))")
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw VMToolsError(.failure, path, "cannot read: \(errnoMessage(e))")
        }
        if let kind = fileKind(st.st_mode), st.st_mode & S_IFMT != S_IFBLK {
            close(fd)
            throw VMToolsError(.failure, path, "is \(kind), not a regular file or block device")
        }
        // Plain blocking reads from here on (a block device ignores the flag, but be explicit).
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return fd
    }

    /// Why `path` cannot be a disk or CD-ROM image (`is a FIFO, …`: it exists but is a FIFO,
    /// a socket, a character device); nil for a regular file, a block
    /// device, a directory or a missing file, which callers judge themselves.
    package static func imageFileProblem(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        let type = st.st_mode & S_IFMT
        guard type != S_IFBLK, type != S_IFDIR, let kind = fileKind(st.st_mode) else { return nil }
        return "is \(kind), not a regular file or block device"
    }

    /// "a FIFO", "a directory" …; nil for a regular file.
    static func fileKind(_ mode: mode_t) -> String? {
        switch mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFIFO: return "a FIFO"
        case S_IFDIR: return "a directory"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        default: return "not a plain file"
        }
    }

    /// Reads a small text file, or nil when it does not exist.
    package static func readTextIfExists(_ path: String, limit: Int = 16 << 20) throws -> String? {
        guard exists(path) else { return nil }
        let bytes = try readBytes(path, limit: limit)
        return String(decoding: bytes, as: UTF8.self)
    }
}
