/// The image catalog (vmimage(1), CATALOG): `images/NAME.image` in the
/// installation, system and user layers; a later layer's file of the same
/// name replaces an earlier one's.
public struct ImageCatalog: Sendable {
    public var paths: SystemPaths
    public var includeUser: Bool

    public init(paths: SystemPaths, includeUser: Bool) {
        self.paths = paths
        self.includeUser = includeUser
    }

    /// Where entries are looked for, in the order an error lists them.
    public var directories: [String] { paths.imageDirectories(includeUser: includeUser) }

    /// Whether `s` could name an entry at all (`[a-z0-9][a-z0-9._-]*`, no
    /// slash): cheap, reads nothing, so a path never costs a catalog scan.
    public static func isCandidateName(_ s: String) -> Bool {
        guard let first = s.utf8.first, (0x61...0x7a).contains(first) || (0x30...0x39).contains(first), s.utf8.count <= 64 else { return false }
        return s.utf8.allSatisfy { (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2e || $0 == 0x2d || $0 == 0x5f }
    }

    /// The entry `name` or an alias names; nil when none does.
    public func entry(named name: String) throws -> ImageEntry? {
        throw VMToolsError(.failure, name, "the image catalog is not implemented yet")
    }

    /// `entry(named:)`, or an error naming where it looked.
    public func require(_ name: String) throws -> ImageEntry {
        throw VMToolsError(.failure, name, "the image catalog is not implemented yet")
    }

    /// Every entry, sorted by name.
    public func entries() throws -> [ImageEntry] { [] }
}
