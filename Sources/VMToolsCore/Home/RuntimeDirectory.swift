import CSystem

#if canImport(Glibc)
import Glibc
#endif

/// Where a VM's run-time files go when no writable VM home can hold them
/// (Docs/vmtools.7, FILES): bare boots of a disk image or ISO, and homes on
/// read-only media. `$XDG_RUNTIME_DIR/vmtools`, else
/// `${TMPDIR:-/tmp}/vmtools-<uid>`, mode 0700, with one directory per VM:
///
/// - `bare-XXXXXX` for a bare boot: unique (mkdtemp), found again through
///   QEMU's `-pidfile`, which lies in it;
/// - `home-<hash of the home's path>` for a read-only home: found again from
///   the home, and its `home` link maps the pid file back to the home.
///
/// QEMU runs with the VM's directory as working directory, so its relative
/// socket paths stay short (the 108-byte socket path limit, Docs/ARCHITECTURE.md).
public enum RuntimeDirectory {
    /// The link in a read-only home's directory that names the home.
    static let homeLink = "home"
    /// An empty file in each of these directories: a VM home that happens to
    /// have a similar name and place is never taken (or removed) for one.
    static let marker = ".vmtools-run"

    /// The base directory, for this process's environment.
    public static var base: String {
        if let x = getenv("XDG_RUNTIME_DIR").map({ String(cString: $0) }), x.hasPrefix("/") {
            return x.appendingPathComponent("vmtools")
        }
        let tmp = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.hasPrefix("/") ? $0 : nil } ?? "/tmp"
        return tmp.appendingPathComponent("vmtools-\(geteuid())")
    }

    /// The directory for the read-only home `home` (canonical); it may not exist.
    public static func forHome(_ home: String) -> String {
        base.appendingPathComponent("home-" + hash(home))
    }

    /// Whether `dir` is one of these directories (any user's): a bare boot's
    /// or a read-only home's, not a VM home. Another user's cannot be looked
    /// into; its name and place tell.
    public static func isRunDirectory(_ dir: String) -> Bool {
        guard hasRunDirectoryName(dir) else { return false }
        var st = stat()
        return lstat(dir.appendingPathComponent(marker), &st) == 0 || errno == EACCES
    }

    /// One of ours, which may be changed: named, placed and marked so.
    package static func isOwnRunDirectory(_ dir: String) -> Bool {
        var st = stat()
        return hasRunDirectoryName(dir) && lstat(dir.appendingPathComponent(marker), &st) == 0 && st.st_uid == geteuid()
    }

    static func hasRunDirectoryName(_ dir: String) -> Bool {
        let name = dir.lastPathComponent, parent = dir.deletingLastPathComponent.lastPathComponent
        let hex = "0123456789abcdef"
        guard parent == "vmtools" || (parent.hasPrefix("vmtools-") && parent.dropFirst(8).allSatisfy(\.isNumber)) else { return false }
        if name.hasPrefix("bare-") { return name.count == 11 && name.dropFirst(5).allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) } }
        return name.hasPrefix("home-") && name.count == 21 && name.dropFirst(5).allSatisfy { hex.contains($0) }
    }

    /// Creates the marker (see `marker`).
    static func mark(_ dir: String) throws {
        let fd = open(dir.appendingPathComponent(marker), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw VMToolsError(.failure, dir, "cannot create the run-time directory: \(FileSystem.errnoMessage())")
        }
        close(fd)
    }

    /// The VM home a run-time directory stands for; nil for a bare boot.
    public static func home(of dir: String) -> String? {
        guard dir.lastPathComponent.hasPrefix("home-") else { return nil }
        return FileSystem.readLink(dir.appendingPathComponent(homeLink))
    }

    /// Creates the base directory (and missing parents) 0700, whatever the
    /// umask, and refuses one another user could tamper with.
    static func prepareBase() throws -> String {
        let dir = base
        var path = ""
        for part in dir.split(separator: "/") {
            path += "/" + part
            if FileSystem.isDirectory(path) { continue }
            if mkdir(path, 0o700) == 0 {
                chmod(path, 0o700)
            } else if errno != EEXIST {
                throw VMToolsError(.failure, path, "cannot create the run-time directory: \(FileSystem.errnoMessage())")
            }
        }
        try check(dir)
        return dir
    }

    /// A directory of ours: a real directory (not a link), owned by us, and
    /// writable by nobody else.
    static func check(_ dir: String) throws {
        var st = stat()
        guard lstat(dir, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw VMToolsError(.failure, dir, "refusing the run-time directory: not a directory")
        }
        guard st.st_uid == geteuid() else {
            throw VMToolsError(.failure, dir, "refusing the run-time directory: owned by another user (uid \(st.st_uid))")
        }
        guard st.st_mode & 0o022 == 0 else {
            throw VMToolsError(.failure, dir, "refusing the run-time directory: it is group- or world-writable")
        }
    }

    /// A new directory for a bare boot.
    package static func makeBare() throws -> String {
        let parent = try prepareBase()
        var template = Array(parent.appendingPathComponent("bare-XXXXXX").utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw VMToolsError(.failure, parent, "cannot create a run-time directory: \(FileSystem.errnoMessage())")
        }
        let dir = FileSystem.string(fromNulTerminated: template)
        chmod(dir, 0o700)
        do { try mark(dir) } catch {
            rmdir(dir)
            throw error
        }
        return dir
    }

    /// The directory of the read-only home `home`, created if needed.
    static func prepare(home: String) throws -> String {
        _ = try prepareBase()
        let dir = forHome(home)
        if mkdir(dir, 0o700) == 0 {
            chmod(dir, 0o700)
        } else if errno != EEXIST {
            throw VMToolsError(.failure, dir, "cannot create the run-time directory: \(FileSystem.errnoMessage())")
        }
        try check(dir)
        try mark(dir)
        let link = dir.appendingPathComponent(homeLink)
        if FileSystem.readLink(link) != home {
            // Replaced atomically: a reader sees the old link or the new one.
            let tmp = link + ".\(getpid())"
            unlink(tmp)
            guard symlink(home, tmp) == 0, Glibc.rename(tmp, link) == 0 else {
                unlink(tmp)
                throw VMToolsError(.failure, link, "cannot create: \(FileSystem.errnoMessage())")
            }
        }
        return dir
    }

    /// What QEMU leaves in a run-time directory once it has exited.
    package static func removeFiles(_ dir: String, global: GlobalConfig) {
        guard isOwnRunDirectory(dir) else { return }
        for name in global.fileNames.workFiles(in: dir) + [VMFileNames.cloudInitSeed, VMFileNames.kickstartVolume] {
            unlink(dir.appendingPathComponent(name))
        }
        FileSystem.removeTree(dir.appendingPathComponent(VMFileNames.tftpDirectory))
    }

    /// Removes a run-time directory whose QEMU has exited. A read-only home's
    /// directory stays while a vmtools command holds the home's lock in it,
    /// or holds anything else (a new start's files).
    package static func removeIfUnused(_ dir: String, global: GlobalConfig) {
        guard isOwnRunDirectory(dir) else { return }
        if dir.lastPathComponent.hasPrefix("bare-") {
            FileSystem.removeTree(dir)
            return
        }
        if FileSystem.lexists(dir.appendingPathComponent(global.fileNames.lock)) { return }
        let link = dir.appendingPathComponent(homeLink)
        let home = FileSystem.readLink(link)
        unlink(link)
        unlink(dir.appendingPathComponent(marker))
        // Not empty: put the link and marker back for whoever uses it.
        if rmdir(dir) != 0 {
            if let home { symlink(home, link) }
            try? mark(dir)
        }
    }

    /// FNV-1a, 64 bits: a short stable name for a path (not a secret).
    static func hash(_ s: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01b3
        }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// An flock on a directory, held while vmup sets a bare boot up, so
/// `RuntimeDirectory.removeStale` of another vmup leaves it alone.
package final class DirectoryFlock {
    private var fd: Int32

    package init(_ dir: String) {
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { flock(fd, LOCK_EX) }
    }

    deinit { release() }

    package func release() {
        if fd >= 0 { close(fd) }
        fd = -1
    }
}
