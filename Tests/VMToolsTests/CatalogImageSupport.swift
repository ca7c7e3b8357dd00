import Foundation
import Testing
@testable import VMToolsCore

/// A scratch installation's image catalog and cache for the tests of
/// catalog names in storage arguments (vmcreate(1), vmup(1): IMAGES BY
/// NAME): entries in the installation layer (`VMTOOLS_DATADIR/images`),
/// the cache under the scratch's XDG_CACHE_HOME, images put there as a
/// verified pull leaves them, so no test downloads.
struct CatalogFixture {
    let s: Scratch
    var cacheHome: String { s.url("cache") }
    var cache: ImageCache { ImageCache(environment: ["XDG_CACHE_HOME": cacheHome]) }
    /// What every command of these tests gets on top of the CLI's environment.
    var env: [String: String] { ["XDG_CACHE_HOME": cacheHome] }

    init(_ s: Scratch) { self.s = s }

    /// `share/images/NAME.image`; `url` is the x86_64 image's.
    @discardableResult
    func entry(_ name: String, kind: String = "cloud", url: String, digest: String? = nil, checksums: String? = nil,
               signature: String? = nil, keyring: String? = nil, _ extra: String = "") throws -> String {
        var text = "image_kind=\(kind)\nimage_url_x86_64='\(url)'\n"
        if let digest { text += "image_digest_x86_64=\(digest)\n" }
        if let checksums { text += "image_checksums_x86_64='\(checksums)'\n" }
        if let signature { text += "image_signature_x86_64='\(signature)'\n" }
        if let keyring { text += "image_keyring='\(keyring)'\n" }
        return try s.write("share/images/\(name).image", text + extra)
    }

    /// A copy of `file` in the cache, as a verified pull of `entry` from `url` leaves it.
    func cached(_ file: String, entry: String, url: String, fileExtension: String = "qcow2") throws -> ImageCache.Image {
        let digest = try #require(ImageDigest(parsing: "sha256:" + SHA256.file(file)))
        let cache = self.cache
        try cache.prepare()
        let partial = cache.partialDirectory + "/test-" + digest.hex
        try FileManager.default.copyItem(atPath: file, toPath: partial)
        let size = try FileManager.default.attributesOfItem(atPath: file)[.size] as? UInt64 ?? 0
        return try cache.store(partial: partial, digest: digest, fileExtension: fileExtension, entry: entry, url: url,
                               date: Int(Date().timeIntervalSince1970), size: size)
    }

    /// A small qcow2 to stand for a distribution's image.
    func image(_ rel: String, size: String = "64M") throws -> String {
        let path = s.url(rel)
        let r = try Subprocess("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", path, size]).run()
        try #require(r.status == 0, "\(r.stderrText)")
        return path
    }

    /// `qemu-img info`'s backing file of `image`, nil for none.
    static func backing(_ image: String) throws -> String? {
        let info = try QemuImg.info(image, backingChain: false, environment: ProcessInfo.processInfo.environment)
        return info["backing-filename"]?.stringValue
    }

    /// `name=value` lines of a settings file, values unquoted.
    static func settings(_ file: String) throws -> [String: String] {
        try VMSettingsFile.read(file).assignments.reduce(into: [:]) { $0[$1.0] = $1.1 }
    }
}
