/// Downloads and verifies a catalog entry's image into the cache
/// (vmimage(1), DOWNLOADS): resumable, hashed while it downloads, checked
/// against a pinned digest or the distribution's (signed) checksum file,
/// once however many commands pull it at the same time.
public struct ImagePuller {
    public var cache: ImageCache
    public var mirror: ImageMirror
    /// cfg_images_unverified=yes: an entry with nothing to verify is used, with a NOTICE.
    public var allowUnverified: Bool
    /// `x86_64`, `aarch64`: which of the entry's URLs.
    public var architecture: String
    public var console: Console
    public var environment: [String: String]

    public init(cache: ImageCache, mirror: ImageMirror, allowUnverified: Bool, architecture: String,
                console: Console, environment: [String: String]) {
        self.cache = cache
        self.mirror = mirror
        self.allowUnverified = allowUnverified
        self.architecture = architecture
        self.console = console
        self.environment = environment
    }

    /// The entry's current image, downloaded and verified unless the cache
    /// holds it already (this asks the network for the checksum file, to
    /// find a newer build: `vmimage NAME`).
    public func pull(_ entry: ImageEntry) throws -> ImageCache.Image {
        throw VMToolsError(.failure, entry.name, "downloads are not implemented yet")
    }

    /// What vmcreate and vmup use: the cached image of a pinned digest, else
    /// the newest one cached for the entry, else `pull`.
    public func cachedOrPull(_ entry: ImageEntry) throws -> ImageCache.Image {
        if let d = entry.digests[architecture], let i = cache.image(d) { return i }
        if entry.digests[architecture] == nil, let i = cache.newest(entry: entry.name) { return i }
        return try pull(entry)
    }
}
