#if canImport(Glibc)
import Glibc
#endif

/// The shared base cache (vmimage(1), CACHE): one read-only file per
/// verified digest, `ALG-HEX.EXT`, beside its record `ALG-HEX.record`
/// (entry, URL, digest, date, size) and its users `ALG-HEX.users` (the VM
/// homes whose disks rest on it). Resumable downloads wait in `.partial/`;
/// `.lock` serialises pulls and changes to the users.
public struct ImageCache: Sendable {
    public var directory: String

    public init(directory: String) { self.directory = directory }

    /// `$XDG_CACHE_HOME/vmtools/images` (`~/.cache/…`); root without
    /// XDG_CACHE_HOME: `/var/cache/vmtools/images`.
    public init(environment env: [String: String]) {
        if let x = env["XDG_CACHE_HOME"], x.hasPrefix("/") {
            directory = x.appendingPathComponent("vmtools/images")
        } else if getuid() == 0 {
            directory = "/var/cache/vmtools/images"
        } else {
            directory = (env["HOME"] ?? "/").appendingPathComponent(".cache/vmtools/images")
        }
    }

    /// A verified image in the cache and its record.
    public struct Image: Sendable, Equatable {
        public var path: String
        public var digest: ImageDigest
        /// The catalog entry it was pulled for, and from where.
        public var entry: String
        public var url: String
        /// When it was verified, seconds since the epoch.
        public var date: Int
        public var size: UInt64

        public init(path: String, digest: ImageDigest, entry: String, url: String, date: Int, size: UInt64) {
            self.path = path
            self.digest = digest
            self.entry = entry
            self.url = url
            self.date = date
            self.size = size
        }
    }

    /// The cached image of `digest`, if there is one: `ALG-HEX.EXT`, a
    /// regular file (never a link someone left in the cache), with what its
    /// record says (an unreadable record leaves entry and URL empty).
    public func image(_ digest: ImageDigest) -> Image? {
        let stem = Self.stem(digest)
        guard let names = try? FileSystem.listDirectory(directory) else { return nil }
        for name in names.sorted() where name.hasPrefix(stem + ".") {
            let ext = name.dropFirst(stem.utf8.count + 1)
            guard ext != "record", ext != "users", !ext.contains("."), !FileSystem.isTemporaryName(name) else { continue }
            let path = directory.appendingPathComponent(name)
            var st = stat()
            guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            let record = (try? readRecord(stem)) ?? [:]
            return Image(path: path, digest: digest, entry: record["image_name"] ?? "", url: record["image_url"] ?? "",
                         date: record["image_date"].flatMap { Int($0) } ?? Int(st.st_mtim.tv_sec), size: UInt64(st.st_size))
        }
        return nil
    }

    /// The newest cached image pulled for `entry` (by its name), if any:
    /// what vmcreate uses without asking the network.
    public func newest(entry: String) -> Image? {
        ((try? images()) ?? []).filter { $0.entry == entry }.max { ($0.date, $0.path) < ($1.date, $1.path) }
    }

    /// Every cached image, sorted by entry then date.
    public func images() throws -> [Image] {
        guard FileSystem.isDirectory(directory) else { return [] }
        var out: [Image] = []
        for name in try FileSystem.listDirectory(directory) where name.hasSuffix(".record") {
            guard let digest = Self.digest(ofStem: String(name.dropLast(7))), let image = image(digest) else { continue }
            out.append(image)
        }
        return out.sorted { ($0.entry, $0.date, $0.path) < ($1.entry, $1.date, $1.path) }
    }
}
