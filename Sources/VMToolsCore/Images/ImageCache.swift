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

    /// The cached image of `digest`, if there is one.
    public func image(_ digest: ImageDigest) -> Image? { nil }

    /// The newest cached image pulled for `entry` (by its name), if any:
    /// what vmcreate uses without asking the network.
    public func newest(entry: String) -> Image? { nil }

    /// Every cached image, sorted by entry then date.
    public func images() throws -> [Image] { [] }
}
