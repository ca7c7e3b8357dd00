import CSystem

#if canImport(Glibc)
import Glibc
#endif

/// Putting verified images into the cache (vmimage(1), CACHE). Every write
/// is crash-safe (a temporary file, fsync, rename, a sync of the directory)
/// and makes its file's mode whatever the umask; nothing is ever written
/// through a link found in the cache.
extension ImageCache {
    /// `sha256-HEX`: the name of an image's file, record and lock, without extension.
    public static func stem(_ d: ImageDigest) -> String { "\(d.algorithm.rawValue)-\(d.hex)" }

    static func digest(ofStem stem: String) -> ImageDigest? {
        guard let dash = stem.firstIndex(of: "-") else { return nil }
        return ImageDigest(parsing: stem[..<dash] + ":" + stem[stem.index(after: dash)...])
    }

    /// Where resumable downloads wait, and the download locks live.
    public var partialDirectory: String { directory.appendingPathComponent(".partial") }

    /// The cache and `.partial/`, made if missing; refused when either is
    /// a link or another user's directory.
    public func prepare() throws {
        try FileSystem.makeDirectories(directory, mode: 0o755)
        try FileSystem.checkOwnDirectory(directory)
        let partial = partialDirectory
        if mkdir(partial, 0o700) != 0 && errno != EEXIST {
            throw VMToolsError(.failure, partial, "cannot create the directory: \(FileSystem.errnoMessage())")
        }
        try FileSystem.checkOwnDirectory(partial)
        chmod(partial, 0o700)
    }

    /// A held download lock (`.partial/KEY.lock`, flock): one command
    /// downloads an image while another waits for it, then finds it done.
    /// Released by `release` or when the process ends.
    public final class DownloadLock: @unchecked Sendable {
        private var fd: Int32
        init(fd: Int32) { self.fd = fd }
        public func release() {
            guard fd >= 0 else { return }
            flock(fd, LOCK_UN)
            close(fd)
            fd = -1
        }
        deinit { release() }
    }

    /// Takes the download lock of `key` (a digest's stem, or `url-HASH`),
    /// waiting for another command holding it; `waiting` is called once
    /// when it has to wait.
    public func lockDownload(_ key: String, waiting: () -> Void = {}) throws -> DownloadLock {
        let path = partialDirectory.appendingPathComponent(key + ".lock")
        let fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let e = errno
            if e == ELOOP { throw FileSystem.plantedLink(path) }
            throw VMToolsError(.failure, path, "cannot open the download lock: \(FileSystem.errnoMessage(e))")
        }
        fchmod(fd, 0o600)
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            waiting()
            while flock(fd, LOCK_EX) != 0 {
                guard errno == EINTR else {
                    let e = errno
                    close(fd)
                    throw VMToolsError(.failure, path, "cannot lock: \(FileSystem.errnoMessage(e))")
                }
            }
        }
        return DownloadLock(fd: fd)
    }

    /// Moves a verified download (`partial`, complete, its digest checked)
    /// into the cache as `ALG-HEX.EXT`, read-only, after its record: a crash
    /// between the two leaves a record without an image, which counts as
    /// nothing, never an image without its record.
    public func store(partial: String, digest: ImageDigest, fileExtension ext: String, entry: String, url: String,
                      date: Int, size: UInt64) throws -> Image {
        let stem = Self.stem(digest)
        try writeRecord(stem, [("image_name", entry), ("image_url", url), ("image_digest", digest.description),
                               ("image_date", String(date)), ("image_size", String(size))])
        let fd = open(partial, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw VMToolsError(.failure, partial, "cannot open: \(FileSystem.errnoMessage())") }
        fchmod(fd, 0o444)
        let synced = fsync(fd) == 0
        let e = errno
        close(fd)
        guard synced else { throw VMToolsError(.failure, partial, "cannot sync: \(FileSystem.errnoMessage(e))") }
        let path = directory.appendingPathComponent("\(stem).\(ext)")
        try FileSystem.rename(partial, path)
        return Image(path: path, digest: digest, entry: entry, url: url, date: date, size: size)
    }

    /// Records are data in the settings syntax (`image_url='…'`), read
    /// bounded; values never hold a newline (entry names and URLs do not).
    static let recordLimit = 64 << 10

    func writeRecord(_ stem: String, _ fields: [(String, String)]) throws {
        let path = directory.appendingPathComponent(stem + ".record")
        var text = ""
        for (k, v) in fields {
            guard !v.contains("\n") else { throw VMToolsError(.failure, path, "\(k) holds a newline") }
            text += "\(k)='\(v.replacingAll("'", with: "'\\''"))'\n"
        }
        // Read-only whatever the umask, like the image it describes.
        try FileSystem.writeAtomically(Array(text.utf8), to: path, mode: 0o444, exactMode: true)
    }

    /// The record of `stem` as name → value; nil when there is none.
    func readRecord(_ stem: String) throws -> [String: String]? {
        let path = directory.appendingPathComponent(stem + ".record")
        guard FileSystem.lexists(path) else { return nil }
        let fd = try FileSystem.openForReading(path, noFollow: true)
        defer { close(fd) }
        guard let bytes = FileSystem.readBytes(fd, at: 0, count: Self.recordLimit + 1), bytes.count <= Self.recordLimit else {
            throw VMToolsError(.failure, path, "unreadable or too large (more than \(Self.recordLimit >> 10) KiB)")
        }
        var out: [String: String] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            guard let eq = line.firstIndex(of: "="), let value = Self.unquote(line[line.index(after: eq)...]) else { continue }
            out[String(line[..<eq])] = value
        }
        return out
    }

    /// `'a'\''b'` → `a'b`; nil for anything else.
    static func unquote(_ s: Substring) -> String? {
        var out = "", i = s.startIndex
        guard i < s.endIndex else { return "" }
        while i < s.endIndex {
            if s[i] == "'" {
                guard let close = s[s.index(after: i)...].firstIndex(of: "'") else { return nil }
                out += s[s.index(after: i)..<close]
                i = s.index(after: close)
            } else if s[i...].hasPrefix("\\'") {
                out += "'"
                i = s.index(i, offsetBy: 2)
            } else {
                return nil
            }
        }
        return out
    }

    /// The extension a cached image keeps: the URL file name's last one
    /// (`qcow2`, `img`, `iso`), else `img`.
    public static func fileExtension(of url: String) -> String {
        let name = ImagePuller.fileName(of: url)
        guard let dot = name.lastIndex(of: ".") else { return "img" }
        let ext = name[name.index(after: dot)...].lowercased()
        guard !ext.isEmpty, ext.utf8.count <= 16, ext != "record", ext != "users", ext != "lock",
              ext.utf8.allSatisfy({ (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) }) else { return "img" }
        return ext
    }
}
