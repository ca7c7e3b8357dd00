import CSystem

#if canImport(Glibc)
import Glibc
#endif

/// Thin, throwing wrappers over the system calls vmtools needs. Every error
/// names the path it concerns.
package enum FileSystem {
    package static func errnoMessage(_ e: Int32 = errno) -> String {
        String(cString: strerror(e)).lowercased()
    }

    package static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    package static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// A directory with nothing in it: free to receive a moved or copied VM.
    package static func isEmptyDirectory(_ path: String) -> Bool {
        isDirectory(path) && ((try? listDirectory(path).isEmpty) ?? false)
    }

    package static func isRegularFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    package static func isReadable(_ path: String) -> Bool { access(path, R_OK) == 0 }
    package static func isWritable(_ path: String) -> Bool { access(path, W_OK) == 0 }

    /// `realpath(3)`; nil when some component does not exist.
    package static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// GNU `realpath -m`-like for the last component: the directory part must
    /// exist, the last component may be missing.
    package static func canonicalize(_ path: String, cwd: String) throws -> String {
        if path.contains("\n") {
            throw VMToolsError(.failure, path, "newline characters are not allowed in paths")
        }
        if path.isEmpty { throw VMToolsError(.failure, nil, "empty path") }
        let absolute = path.hasPrefix("/") ? path : cwd.appendingPathComponent(path)
        if let r = realPath(absolute) { return r }
        let base = absolute.lastPathComponent
        let dir = absolute.deletingLastPathComponent
        guard base != "." && base != "..", let rd = realPath(dir), isDirectory(rd) else {
            throw unresolvable(dir) ?? VMToolsError(.failure, path, "no such file or directory")
        }
        return rd.appendingPathComponent(base)
    }

    /// The error for a directory `realpath` cannot resolve, about the first
    /// component that is wrong: `vmcreate ~/vms/web` without `~/vms` must
    /// say `~/vms` is missing, not `~/vms/web`.
    private static func unresolvable(_ dir: String) -> VMToolsError? {
        var st = stat()
        var culprit = dir
        while case let up = culprit.deletingLastPathComponent, up != culprit, stat(up, &st) != 0 { culprit = up }
        guard stat(culprit, &st) != 0 else {
            return (st.st_mode & S_IFMT) == S_IFDIR ? nil : VMToolsError(.failure, culprit, "not a directory")
        }
        switch errno {
        case ENOENT: return VMToolsError(.failure, culprit, "no such directory")
        case ENOTDIR: return VMToolsError(.failure, culprit.deletingLastPathComponent, "not a directory")
        case let e: return VMToolsError(.failure, culprit, errnoMessage(e))
        }
    }

    package static func currentDirectory() -> String {
        guard let p = getcwd(nil, 0) else { return "/" }
        defer { free(p) }
        return String(cString: p)
    }

    package static func readLink(_ path: String) -> String? {
        var buf = [CChar](repeating: 0, count: 4097)
        let n = readlink(path, &buf, 4096)
        guard n >= 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
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
                throw VMToolsError(.failure, path, "file is too large (more than \(limit >> 20) MiB)")
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

    /// Names in a directory, excluding `.` and `..`, unsorted.
    package static func listDirectory(_ path: String) throws -> [String] {
        try listDirectoryEntries(path).map(\.name)
    }

    /// One name in a directory with the type `readdir` reports for it
    /// (`DT_UNKNOWN` where the file system does not say: callers then stat).
    package struct DirectoryEntry: Sendable {
        package let name: String
        let type: UInt8

        /// A directory itself, not a link to one (`lstat`).
        package func isDirectory(in dir: String) -> Bool {
            switch type {
            case UInt8(DT_DIR): return true
            case UInt8(DT_UNKNOWN):
                var st = stat()
                return lstat(dir.appendingPathComponent(name), &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
            default: return false
            }
        }

        /// `FileSystem.isRegularFile` (links followed) without a `stat` when `readdir` already knows.
        package func isRegularFile(in dir: String) -> Bool {
            switch type {
            case UInt8(DT_REG): return true
            case UInt8(DT_LNK), UInt8(DT_UNKNOWN): return FileSystem.isRegularFile(dir.appendingPathComponent(name))
            default: return false
            }
        }

        /// `FileSystem.isDirectory` (links followed), likewise.
        package func isDirectoryFollowingLinks(in dir: String) -> Bool {
            switch type {
            case UInt8(DT_DIR): return true
            case UInt8(DT_LNK), UInt8(DT_UNKNOWN): return FileSystem.isDirectory(dir.appendingPathComponent(name))
            default: return false
            }
        }
    }

    /// Runs `body` counting the directories it lists on this thread: a test
    /// proves with it that `vmfix -r` reads each directory once
    /// (Benchmarks/README.md, scale). Plain globals and a thread check, not
    /// a task-local: that would link the concurrency runtime and dispatch
    /// into the binary and slow every command's start.
    static func countingListings<T>(_ body: () throws -> T) rethrows -> (T, Int) {
        listingCount = 0
        countingThread = pthread_self()
        defer { countingThread = nil }
        return (try body(), listingCount)
    }

    nonisolated(unsafe) private static var countingThread: pthread_t?
    nonisolated(unsafe) private static var listingCount = 0

    /// Entries of a directory, excluding `.` and `..`, unsorted.
    package static func listDirectoryEntries(_ path: String) throws -> [DirectoryEntry] {
        if let t = countingThread, pthread_equal(t, pthread_self()) != 0 { listingCount += 1 }
        guard let d = opendir(path) else {
            throw VMToolsError(.failure, path, "cannot list directory: \(errnoMessage())")
        }
        defer { closedir(d) }
        var entries: [DirectoryEntry] = []
        while let entry = readdir(d) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { entries.append(DirectoryEntry(name: name, type: entry.pointee.d_type)) }
        }
        return entries
    }

    /// The new-path rule (vmtools(1)): `dir/base+suffix` if free,
    /// else `dir/base_1+suffix`, `dir/base_2+suffix` …
    package static func newPath(in dir: String, base: String, suffix: String = "",
                        isFree: (String) -> Bool = { !exists($0) }) -> String {
        var candidate = dir.appendingPathComponent(base + suffix)
        var n = 1
        while !isFree(candidate) {
            candidate = dir.appendingPathComponent("\(base)_\(n)\(suffix)")
            n += 1
        }
        return candidate
    }

    package static func mtime(_ path: String) -> Int? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return Int(st.st_mtim.tv_sec)
    }

    package static func hostName() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, 255) == 0 else { return "localhost" }
        return string(fromNulTerminated: buf)
    }

    /// A C string held in an array (what `gethostname`, `strftime` fill in).
    static func string(fromNulTerminated buf: [CChar]) -> String {
        let bytes = buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Writes `data` to `path` so that readers see the old content or the new,
    /// never a mix: a temporary file in the same directory, fsync, rename, and
    /// an fsync of the directory so the rename itself survives a crash.
    package static func writeAtomically(_ data: [UInt8], to path: String, mode: mode_t = 0o644, syncDirectory sync: Bool = true) throws {
        let (fd, tmp) = try openTemporary(beside: path)
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        var written = 0
        while written < data.count {
            let n = data.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                close(fd)
                throw VMToolsError(.failure, path, "cannot write: \(errnoMessage(e))")
            }
            written += n
        }
        // Keep the mode of the file we replace, so a user's chmod survives;
        // not a link's target's (the rename replaces the link itself).
        var st = stat()
        let finalMode = lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG ? st.st_mode & 0o7777 : mode & ~currentUmask()
        fchmod(fd, finalMode)
        guard fsync(fd) == 0 else {
            let e = errno
            close(fd)
            throw VMToolsError(.failure, path, "cannot sync: \(errnoMessage(e))")
        }
        close(fd)
        guard Glibc.rename(tmp, path) == 0 else {
            throw VMToolsError(.failure, path, "cannot replace: \(errnoMessage())")
        }
        ok = true
        if sync { syncDirectory(path.deletingLastPathComponent) }
    }

    package static func syncFile(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0, fsync(fd) == 0 else {
            let e = errno
            if fd >= 0 { close(fd) }
            throw VMToolsError(.failure, path, "cannot sync: \(errnoMessage(e))")
        }
        close(fd)
    }

    package static func syncDirectory(_ dir: String) {
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
    }

    static func currentUmask() -> mode_t {
        let m = umask(0o022)
        umask(m)
        return m
    }

    /// Removes a file and, for state that matters after a crash, syncs its
    /// directory. Run-time files (pid file, sockets) need no sync: a crash
    /// makes them stale anyway.
    package static func removeFile(_ path: String, sync: Bool = true) throws {
        if unlink(path) != 0 && errno != ENOENT {
            throw VMToolsError(.failure, path, "cannot remove: \(errnoMessage())")
        }
        if sync { syncDirectory(path.deletingLastPathComponent) }
    }
}

extension FileSystem {
    /// True for anything at `path`, a dangling symbolic link included.
    package static func lexists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    /// The filesystem a path is on.
    package static func device(_ path: String) -> UInt64? {
        var st = stat()
        return lstat(path, &st) == 0 ? UInt64(st.st_dev) : nil
    }

    package static func isSymlink(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK
    }

    package static func mode(_ path: String) -> mode_t? {
        var st = stat()
        return stat(path, &st) == 0 ? st.st_mode & 0o7777 : nil
    }

    /// `rename(2)`, then a sync of both directories so it survives a crash.
    package static func rename(_ from: String, _ to: String) throws {
        guard Glibc.rename(from, to) == 0 else {
            throw VMToolsError(.failure, from, "cannot move to \(to): \(errnoMessage())")
        }
        syncDirectory(to.deletingLastPathComponent)
        if from.deletingLastPathComponent != to.deletingLastPathComponent { syncDirectory(from.deletingLastPathComponent) }
    }

    /// `rm -rf` without a subprocess; symbolic links are removed, never followed.
    package static func removeTree(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for entry in (try? listDirectory(path)) ?? [] { removeTree(path.appendingPathComponent(entry)) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    /// Whether `path` is `dir` or lies below it, component-wise.
    package static func isWithin(_ path: String, _ dir: String) -> Bool {
        path == dir || path.hasPrefix(dir == "/" ? "/" : dir + "/")
    }

    /// Directories below `root` (not following links), parents before
    /// children. Backup directories (`vmtools-backup.*`) are left out with
    /// what they hold: they belong to their operation (and to `vmfix -b`).
    package static func subdirectories(_ root: String) -> [String] {
        var out: [String] = []
        var stack = [root]
        while let dir = stack.popLast() {
            let entries = ((try? listDirectoryEntries(dir)) ?? []).sorted { bytewiseLess($0.name, $1.name) }
            for e in entries.reversed() where !e.name.hasPrefix("vmtools-backup.") && e.isDirectory(in: dir) {
                stack.append(dir.appendingPathComponent(e.name))
            }
            if dir != root { out.append(dir) }
        }
        return out
    }
}

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

extension FileSystem {
    /// Whether a running command holds an flock on the directory at `path`
    /// (a VM's lock holder, an import's work directory): taking one at
    /// once fails. With `followingLinks` false a link is never locked.
    package static func isFlocked(_ path: String, followingLinks: Bool = true) -> Bool {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (followingLinks ? 0 : O_NOFOLLOW))
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return false
        }
        return true
    }
}
