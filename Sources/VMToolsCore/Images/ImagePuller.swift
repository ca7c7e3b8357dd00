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
        guard let original = entry.urls[architecture] else {
            throw VMToolsError(.failure, entry.name, "the entry has no image for \(architecture) (no image_url_\(architecture))")
        }
        let url = mirror.rewrite(original)
        guard Self.isWebURL(url) else {
            throw VMToolsError(.failure, entry.name, "\(url): only https:// and http:// URLs are downloaded")
        }
        let plainHTTP = url.lowercased().hasPrefix("http://")
        var expected: ImageDigest?
        if let pinned = entry.digests[architecture] {
            if let cached = cache.image(pinned) { return cached }
            expected = pinned
        } else if let sums = entry.checksums[architecture] {
            let signed = entry.keyring != nil
            if plainHTTP && !signed {
                throw VMToolsError(.failure, entry.name, "\(url): a plain http:// image needs a pinned digest or a signed checksum file (image_keyring)")
            }
            let list = try checksumList(entry, url: mirror.rewrite(sums), signature: entry.signatures[architecture].map(mirror.rewrite))
            let name = Self.fileName(of: url)
            guard let digest = list.digest(for: name) else {
                throw VMToolsError(.failure, entry.name, "\(mirror.rewrite(sums)): the checksum file has no line for \(name) (the image \(url))")
            }
            if let cached = cache.image(digest) { return cached }
            expected = digest
        } else if !allowUnverified {
            throw VMToolsError(.failure, entry.name, "\(url): the entry has nothing to verify the image with (no image_digest_\(architecture) or image_checksums_\(architecture)); cfg_images_unverified=yes uses it anyway")
        } else if plainHTTP {
            throw VMToolsError(.failure, entry.name, "\(url): a plain http:// image needs a pinned digest or a signed checksum file, even with cfg_images_unverified=yes")
        } else {
            console.notice("\(entry.name): \(url) is used unverified (cfg_images_unverified=yes): nothing checks its content")
        }
        if plainHTTP {
            console.notice("\(entry.name): \(url) is plain http; its integrity comes from the \(entry.digests[architecture] != nil ? "pinned digest" : "signed checksum file")")
        }
        return try download(entry, url: url, expected: expected)
    }

    /// What vmcreate and vmup use: the cached image of a pinned digest, else
    /// the newest one cached for the entry, else `pull`.
    public func cachedOrPull(_ entry: ImageEntry) throws -> ImageCache.Image {
        if let d = entry.digests[architecture], let i = cache.image(d) { return i }
        if entry.digests[architecture] == nil, let i = cache.newest(entry: entry.name) { return i }
        return try pull(entry)
    }
}

extension ImagePuller {
    /// The file name an image is listed under in its checksum file: the
    /// URL's last path component, without a query or fragment.
    public static func fileName(of url: String) -> String {
        var u = Substring(url)
        if let cut = u.firstIndex(where: { $0 == "?" || $0 == "#" }) { u = u[..<cut] }
        return String(u.split(separator: "/", omittingEmptySubsequences: false).last ?? "")
    }

    static func isWebURL(_ url: String) -> Bool {
        let l = url.lowercased()
        return (l.hasPrefix("https://") || l.hasPrefix("http://")) && !url.unicodeScalars.contains { $0.value < 0x21 || $0.value == 0x7f }
    }
}
