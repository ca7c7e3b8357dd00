/// The image catalog (vmtools(7), IMAGE CATALOG): `images/NAME.image` in the
/// installation, system and user layers; a later layer's file of the same
/// name replaces an earlier one's. A file whose name is not a valid entry
/// name (`isCandidateName`: upper case, a leading dot, …) is ignored, so an
/// editor's backup or a README beside the entries never breaks the catalog.
public struct ImageCatalog: Sendable {
    public var paths: SystemPaths
    public var includeUser: Bool
    /// Setting names beyond the built-in ones an entry's `vm_*` lines may
    /// set: those a `vmtools.conf` defines (`GlobalConfig.knownNames`).
    public var knownSettings: Set<String> = []
    /// Why the user's directory is not searched, for the not-found error.
    public var userOff: String?

    public init(paths: SystemPaths, includeUser: Bool) {
        self.paths = paths
        self.includeUser = includeUser
    }

    /// The catalog the global configuration selects: its directories,
    /// `cfg_include_userhome`, and the setting names it defines.
    public init(_ global: GlobalConfig) {
        self.init(paths: global.paths, includeUser: global.includeUser)
        knownSettings = global.knownNames
        if !includeUser { userOff = SettingsResolver.userHomeOff(global.settings) }
    }

    /// Where entries are looked for, in the order an error lists them.
    public var directories: [String] { paths.imageDirectories(includeUser: includeUser) }

    /// Whether `s` could name an entry at all (`[a-z0-9][a-z0-9._-]*`, no
    /// slash): cheap, reads nothing, so a path never costs a catalog scan.
    public static func isCandidateName(_ s: String) -> Bool {
        guard let first = s.utf8.first, (0x61...0x7a).contains(first) || (0x30...0x39).contains(first), s.utf8.count <= 64 else { return false }
        return s.utf8.allSatisfy { (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2e || $0 == 0x2d || $0 == 0x5f }
    }

    /// The entry `name` or an alias names; nil when none does. A real name
    /// wins over an alias; an alias two entries claim goes to the one in the
    /// later layer, and within one layer it is an error.
    public func entry(named name: String) throws -> ImageEntry? {
        guard Self.isCandidateName(name) else { return nil }
        // The name itself, latest layer first: one stat per layer, no listing.
        for dir in directories.reversed() {
            let path = dir.appendingPathComponent(name + ImageEntry.fileExtension)
            // An unreadable file in a later layer is an error, not a silent fall back to an earlier one.
            if FileSystem.lexists(path) { return try ImageEntry.read(path, name: name, knownSettings: knownSettings) }
        }
        guard let target = try aliases()[name] else { return nil }
        return try entry(named: target)
    }

    /// `entry(named:)`, or an error naming where it looked.
    public func require(_ name: String) throws -> ImageEntry {
        guard Self.isCandidateName(name) else {
            throw VMToolsError(.failure, "image \(SettingsText.visible(SettingsText.clip(name)))",
                               "invalid image name (lower-case letters, digits, '.', '-' and '_', starting with a letter or digit)")
        }
        if let e = try entry(named: name) { return e }
        var notes: [String] = []
        if !includeUser, let user = paths.userDir?.appendingPathComponent("images").appendingPathComponent(name + ImageEntry.fileExtension),
           FileSystem.lexists(user) {
            notes.append("\(user) is not searched: \(userOff ?? "\(SettingKey.includeUserHome) is not 'yes'")")
        }
        let why = notes.isEmpty ? "" : "; " + notes.joined(separator: "; ")
        throw VMToolsError(.failure, "image \(name)",
                           "not found (looked for \(name)\(ImageEntry.fileExtension) and for an entry with that alias in \(directories.joined(separator: ", "))\(why))")
    }

    /// Every entry, sorted by name.
    public func entries() throws -> [ImageEntry] {
        try files().sorted { $0.key < $1.key }.map { try ImageEntry.read($0.value.path, name: $0.key, knownSettings: knownSettings) }
    }

    /// The names of the entries, sorted, without reading them (completion).
    public func names() -> [String] { files().keys.sorted() }

    /// Alias → entry name, for every alias no real name shadows.
    public func aliases() throws -> [String: String] {
        let files = files()
        var claims: [String: (entry: String, layer: Int)] = [:]
        for (name, f) in files.sorted(by: { $0.key < $1.key }) {
            for alias in try ImageEntry.read(f.path, name: name, knownSettings: knownSettings).aliases where files[alias] == nil {
                if let other = claims[alias] {
                    if other.layer > f.layer { continue }
                    if other.layer == f.layer {
                        throw VMToolsError(.failure, "image \(alias)",
                                           "the alias is claimed by both \(files[other.entry]?.path ?? other.entry) and \(f.path); remove it from one")
                    }
                }
                claims[alias] = (name, f.layer)
            }
        }
        return claims.mapValues(\.entry)
    }

    /// The winning file of each name: later layers replace earlier ones.
    /// A missing or unlistable directory contributes nothing.
    func files() -> [String: (path: String, layer: Int)] {
        var found: [String: (path: String, layer: Int)] = [:]
        for (layer, dir) in directories.enumerated() {
            guard let listing = try? FileSystem.listDirectoryEntries(dir) else { continue }
            for e in listing where e.name.hasSuffix(ImageEntry.fileExtension) {
                let name = String(e.name.dropLast(ImageEntry.fileExtension.count))
                guard Self.isCandidateName(name), e.isRegularFile(in: dir) else { continue }
                found[name] = (dir.appendingPathComponent(e.name), layer)
            }
        }
        return found
    }
}
