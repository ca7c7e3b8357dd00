/// One catalog entry, `images/NAME.image` (vmtools(7), IMAGE CATALOG): data
/// in the settings-file syntax, read by `ConfigFileParser`, never by a shell.
public struct ImageEntry: Sendable, Equatable {
    public enum Kind: String, Sendable { case cloud, iso }

    /// What users type: the file name without `.image`.
    public var name: String
    /// The file it was read from (the winning layer's).
    public var file: String
    public var kind: Kind
    /// `image_url_ARCH`, by architecture (`x86_64`, `aarch64`).
    public var urls: [String: String] = [:]
    /// `image_digest_ARCH`: a pinned digest.
    public var digests: [String: ImageDigest] = [:]
    /// `image_checksums_ARCH`: the distribution's checksum file.
    public var checksums: [String: String] = [:]
    /// `image_signature_ARCH`: that file's detached OpenPGP signature; none
    /// with a keyring means the checksum file is clear-signed.
    public var signatures: [String: String] = [:]
    /// `image_keyring`: the OpenPGP keyring `gpgv` checks with.
    public var keyring: String?
    /// `image_user`: the default login user.
    public var user: String?
    /// `image_aliases`: other names for this entry (`debian`).
    public var aliases: [String] = []
    /// `vm_*` lines: settings a VM made from this entry gets, in file order.
    public var settings: [(name: String, value: String)] = []

    public init(name: String, file: String, kind: Kind) {
        self.name = name
        self.file = file
        self.kind = kind
    }

    public static func == (a: ImageEntry, b: ImageEntry) -> Bool {
        a.name == b.name && a.file == b.file && a.kind == b.kind && a.urls == b.urls && a.digests == b.digests
            && a.checksums == b.checksums && a.signatures == b.signatures && a.keyring == b.keyring && a.user == b.user
            && a.aliases == b.aliases && a.settings.map(\.name) == b.settings.map(\.name) && a.settings.map(\.value) == b.settings.map(\.value)
    }
}

extension ImageEntry {
    /// Catalog file names end with this; the rest is the entry's name.
    public static let fileExtension = ".image"
    /// The architectures an entry may name URLs for.
    public static let architectures = ["x86_64", "aarch64"]
    /// An entry is a dozen lines: anything bigger is not one.
    public static let maximumSize = 64 << 10

    /// The image's URL for `architecture`, before `cfg_images_mirror`.
    public func url(for architecture: String) -> String? { urls[architecture] }

    /// Whether there is something to verify the image with: a pinned digest
    /// or a checksum file. Without it, `cfg_images_unverified` decides.
    public func hasVerification(_ architecture: String) -> Bool {
        digests[architecture] != nil || checksums[architecture] != nil
    }

    /// Whether the checksum file's signature is checked with `gpgv`: a
    /// keyring and a checksum file (detached signature or clear-signed).
    public func isSigned(_ architecture: String) -> Bool {
        keyring != nil && checksums[architecture] != nil
    }

    /// Whether any URL of `architecture` is plain `http://`: the entry was
    /// accepted because a digest or a signed checksum file vouches for it,
    /// and the downloader says so in a NOTICE.
    public func needsPlainHTTPNotice(_ architecture: String) -> Bool {
        [urls[architecture], checksums[architecture], signatures[architecture]].contains { $0.map(Self.isPlainHTTP) ?? false }
    }

    /// The image's file name, the last component of the URL's path: the name
    /// a checksum file lists it under.
    public func imageFileName(_ architecture: String) -> String? {
        urls[architecture].flatMap(Self.lastPathComponent)
    }

    /// The architectures the entry names a URL for, in `architectures` order.
    public var architecturesWithURL: [String] { Self.architectures.filter { urls[$0] != nil } }

    /// Reads `path`, bounded by `maximumSize`; `name` is its file name
    /// without `.image`.
    public static func read(_ path: String, name: String, knownSettings: Set<String> = []) throws -> ImageEntry {
        let text = try SettingsText.validate(FileSystem.readBytes(path, limit: maximumSize), path: path)
        return try parse(text, name: name, file: path, knownSettings: knownSettings)
    }

    /// Parses and validates an entry (vmtools(7), IMAGE CATALOG). Every error
    /// is one line, `file:line: message`. `knownSettings` adds names a
    /// `vmtools.conf` defines to the built-in ones a `vm_*` line may set.
    public static func parse(_ text: String, name: String, file: String, knownSettings: Set<String> = []) throws -> ImageEntry {
        guard text.utf8.count <= maximumSize else {
            throw VMToolsError(.failure, file, "file is too large (more than \(maximumSize >> 10) KiB); a catalog entry is a few lines")
        }
        let parsed = try ConfigFileParser.parse(text, path: file, kind: .catalogEntry)
        if let (other, line) = parsed.ignored.first {
            throw VMToolsError.file(file, line: line, "'\(SettingsText.visible(other))': unknown key (a catalog entry has image_* keys and vm_* settings)")
        }
        var entry = ImageEntry(name: name, file: file, kind: .cloud)
        var kind: Kind?
        var lines: [String: Int] = [:]
        func fail(_ line: Int, _ message: String) -> VMToolsError { VMToolsError.file(file, line: line, message) }

        for case let .assign(key, parts, line) in parsed.statements {
            var value = ""
            for part in parts {
                switch part {
                case let .literal(t): value += t
                case let .setting(ref):
                    throw fail(line, "\(key): '$\(ref)' is not expanded in a catalog entry; write the value")
                }
            }
            if let first = lines[key] { throw fail(line, "\(key) is set twice (first on line \(first))") }
            lines[key] = line
            let shown = "'\(SettingsText.visible(SettingsText.clip(value)))'"

            if key.hasPrefix("cfg_") {
                throw fail(line, "\(key): a catalog entry must not change the configuration (cfg_* settings belong in vmtools.conf)")
            }
            if key.hasPrefix("vm_") {
                if let why = refusal(setting: key, knownSettings: knownSettings) { throw fail(line, "\(key): \(why)") }
                entry.settings.append((key, value))
                continue
            }
            switch key {
            case "image_kind":
                guard let k = Kind(rawValue: value) else { throw fail(line, "image_kind: \(shown): expected cloud or iso") }
                kind = k
            case "image_keyring":
                guard value.hasPrefix("/"), value.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7f }) else {
                    throw fail(line, "image_keyring: \(shown): expected the absolute path of an OpenPGP keyring")
                }
                entry.keyring = value
            case "image_user":
                guard isUserName(value) else { throw fail(line, "image_user: \(shown): expected a login name ([a-z_][a-z0-9_-]*)") }
                entry.user = value
            case "image_aliases":
                for alias in value.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init) {
                    guard ImageCatalog.isCandidateName(alias) else {
                        throw fail(line, "image_aliases: '\(SettingsText.visible(SettingsText.clip(alias)))': not a valid entry name (lower-case letters, digits, '.', '-', '_')")
                    }
                    guard alias != name, !entry.aliases.contains(alias) else { throw fail(line, "image_aliases: '\(alias)' is given twice or is the entry's own name") }
                    entry.aliases.append(alias)
                }
            default:
                guard let (field, arch) = perArchitecture(key) else {
                    throw fail(line, "\(key): unknown key (image_kind, image_url_ARCH, image_digest_ARCH, image_checksums_ARCH, image_signature_ARCH, image_keyring, image_user, image_aliases; ARCH is \(architectures.joined(separator: " or ")))")
                }
                if field == "digest" {
                    guard let d = ImageDigest(parsing: value) else {
                        throw fail(line, "\(key): \(shown): expected sha256:HEX (64 hex digits) or sha512:HEX (128)")
                    }
                    entry.digests[arch] = d
                    continue
                }
                if let why = urlProblem(value) { throw fail(line, "\(key): \(shown): \(why)") }
                switch field {
                case "url": entry.urls[arch] = value
                case "checksums": entry.checksums[arch] = value
                default: entry.signatures[arch] = value
                }
            }
        }

        // A missing key is reported at line 1: no line holds it.
        let end = 1
        guard let kind else { throw fail(end, "image_kind is missing (cloud or iso)") }
        entry.kind = kind
        guard entry.urls["x86_64"] != nil else { throw fail(end, "image_url_x86_64 is missing") }
        for arch in architectures {
            let at = { (field: String) in lines["image_\(field)_\(arch)"] ?? end }
            if entry.urls[arch] == nil {
                for field in ["digest", "checksums", "signature"] where lines["image_\(field)_\(arch)"] != nil {
                    throw fail(at(field), "image_\(field)_\(arch) without image_url_\(arch)")
                }
                continue
            }
            if entry.signatures[arch] != nil {
                guard entry.checksums[arch] != nil else { throw fail(at("signature"), "image_signature_\(arch) without image_checksums_\(arch): a signature is the checksum file's") }
                guard entry.keyring != nil else { throw fail(at("signature"), "image_signature_\(arch) without image_keyring to check it with") }
            }
            // A plain http:// download is trusted for what vouches for it:
            // a pinned digest, or a checksum file whose signature is checked.
            if entry.needsPlainHTTPNotice(arch), entry.digests[arch] == nil, !entry.isSigned(arch) {
                let field = isPlainHTTP(entry.urls[arch] ?? "") ? "url" : isPlainHTTP(entry.checksums[arch] ?? "") ? "checksums" : "signature"
                throw fail(at(field), "image_\(field)_\(arch): a plain http:// URL needs image_digest_\(arch) or a signed checksum file (image_checksums_\(arch) and image_keyring); use https://")
            }
        }
        if entry.keyring != nil, !architectures.contains(where: { entry.checksums[$0] != nil }) {
            throw fail(lines["image_keyring"] ?? end, "image_keyring without an image_checksums_ARCH file to check")
        }
        return entry
    }

    /// Why a `vm_*` line may not be in an entry; nil when it may.
    static func refusal(setting: String, knownSettings: Set<String>) -> String? {
        if setting == SettingKey.home || setting == SettingKey.name {
            return "a VM's name and home come from its directory, not from a catalog entry"
        }
        if setting == SettingKey.imageName || setting == SettingKey.imageURL || setting == SettingKey.imageDigest {
            return "recorded by vmcreate from the entry itself; a catalog entry does not set it"
        }
        if Defaults.value(setting) != nil || knownSettings.contains(setting) || SettingName.isDriveSetting(setting)
            || SettingName.isInterfaceSetting(setting) || SettingName.isUSBSetting(setting) || SettingName.isShareSetting(setting) {
            return nil
        }
        return "unknown setting (see vm.settings(5); custom names must first be defined in a vmtools.conf)"
    }

    /// `image_FIELD_ARCH` for the per-architecture keys.
    static func perArchitecture(_ key: String) -> (field: String, arch: String)? {
        for field in ["url", "digest", "checksums", "signature"] {
            let prefix = "image_\(field)_"
            if key.hasPrefix(prefix), architectures.contains(String(key.dropFirst(prefix.count))) {
                return (field, String(key.dropFirst(prefix.count)))
            }
        }
        return nil
    }

    /// `https://HOST/…` or `http://HOST/…` with a path, printable ASCII
    /// without blanks; nil when the URL is acceptable.
    static func urlProblem(_ url: String) -> String? {
        guard url.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f }) else {
            return "a URL is printable ASCII without blanks (percent-encode the rest)"
        }
        let rest: Substring
        if url.hasPrefix("https://") { rest = url.dropFirst(8) }
        else if url.hasPrefix("http://") { rest = url.dropFirst(7) }
        else { return "expected an https:// URL" }
        guard let slash = rest.firstIndex(of: "/"), slash != rest.startIndex else { return "expected https://HOST/PATH" }
        guard lastPathComponent(url) != nil else { return "the URL's path must end with a file name" }
        return nil
    }

    static func isPlainHTTP(_ url: String) -> Bool { url.hasPrefix("http://") }

    /// The last component of a URL's path, without query or fragment.
    static func lastPathComponent(_ url: String) -> String? {
        let path = url.prefix { $0 != "?" && $0 != "#" }
        let schemeLength = path.hasPrefix("https://") ? 8 : path.hasPrefix("http://") ? 7 : 0
        guard schemeLength > 0 else { return nil }
        let afterHost = path.dropFirst(schemeLength).drop { $0 != "/" }
        guard let last = afterHost.split(separator: "/", omittingEmptySubsequences: false).last,
              !last.isEmpty, last != ".", last != ".." else { return nil }
        return String(last)
    }

    static func isUserName(_ s: String) -> Bool {
        guard let f = s.unicodeScalars.first, f == "_" || ("a"..."z").contains(f), s.utf8.count <= 32 else { return false }
        return s.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" }
    }
}
