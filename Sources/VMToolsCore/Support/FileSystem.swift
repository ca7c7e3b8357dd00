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
    /// `exactMode` gives the file `mode` itself, neither the umask's cut
    /// nor the replaced file's mode.
    package static func writeAtomically(_ data: [UInt8], to path: String, mode: mode_t = 0o644, exactMode: Bool = false,
                                        syncDirectory sync: Bool = true) throws {
        let (fd, tmp) = try openTemporary(beside: path)
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        do {
            try writeAll(fd, data, path: path)
        } catch {
            close(fd)
            throw error
        }
        // Keep the mode of the file we replace, so a user's chmod survives;
        // not a link's target's (the rename replaces the link itself).
        var st = stat()
        let finalMode = exactMode ? mode
            : lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG ? st.st_mode & 0o7777 : mode & ~currentUmask()
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

    /// Writes all of `data` to `fd`, through short writes and EINTR; an
    /// error names `path`.
    package static func writeAll(_ fd: Int32, _ data: UnsafeRawBufferPointer, path: String) throws {
        var written = 0
        while written < data.count {
            let n = write(fd, data.baseAddress! + written, data.count - written)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw VMToolsError(.failure, path, "cannot write: \(errnoMessage())") }
            written += n
        }
    }

    package static func writeAll(_ fd: Int32, _ data: [UInt8], path: String) throws {
        try data.withUnsafeBytes { try writeAll(fd, $0, path: path) }
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
