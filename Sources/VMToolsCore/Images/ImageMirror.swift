/// `cfg_images_mirror` (vmtools.conf(5)): space-separated `FROM=TO` URL
/// prefix rewrites; the longest matching FROM wins.
public struct ImageMirror: Sendable, Equatable {
    public var rules: [(from: String, to: String)] = []

    public init() {}

    /// Parses the setting's value; a rule without `=` is an error naming the setting.
    public init(_ value: String) throws {
        throw VMToolsError(.failure, "cfg_images_mirror", "not implemented yet")
    }

    public func rewrite(_ url: String) -> String { url }

    public static func == (a: ImageMirror, b: ImageMirror) -> Bool {
        a.rules.map(\.from) == b.rules.map(\.from) && a.rules.map(\.to) == b.rules.map(\.to)
    }
}
