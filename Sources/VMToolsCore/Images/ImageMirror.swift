/// `cfg_images_mirror` (vmtools.conf(5), vmtools(7) IMAGE CATALOG):
/// space-separated `FROM=TO` URL prefix rewrites; the longest matching FROM
/// wins. Applied to every URL of an entry (image, checksum file, signature),
/// so a local mirror serves all three.
public struct ImageMirror: Sendable, Equatable {
    public var rules: [(from: String, to: String)] = []

    public init() {}

    /// Parses the setting's value; a rule without `=` is an error naming the setting.
    public init(_ value: String) throws {
        do {
            try self.init(parsing: value)
        } catch {
            throw VMToolsError(.failure, SettingKey.imagesMirror, error.text)
        }
    }

    struct Problem: Error { var text: String }

    init(parsing value: String) throws(Problem) {
        for rule in value.split(whereSeparator: { $0 == " " || $0 == "\t" }) {
            let shown = "'\(SettingsText.visible(SettingsText.clip(rule)))'"
            guard let eq = rule.firstIndex(of: "=") else { throw Problem(text: "\(shown): expected FROM=TO (two URL prefixes)") }
            let from = String(rule[..<eq]), to = String(rule[rule.index(after: eq)...])
            for (side, url) in [("FROM", from), ("TO", to)] {
                guard (url.hasPrefix("https://") && url.count > 8) || (url.hasPrefix("http://") && url.count > 7),
                      url.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f }) else {
                    throw Problem(text: "\(shown): \(side) must be an http:// or https:// URL prefix")
                }
            }
            guard !rules.contains(where: { $0.from == from }) else { throw Problem(text: "\(shown): \(from) is rewritten twice") }
            rules.append((from, to))
        }
    }

    /// `url` with the longest matching FROM replaced by its TO; unchanged
    /// when no rule matches. A plain text prefix: end FROM with `/` to
    /// match whole path components.
    public func rewrite(_ url: String) -> String {
        guard let rule = rules.filter({ url.hasPrefix($0.from) }).max(by: { $0.from.utf8.count < $1.from.utf8.count }) else { return url }
        return rule.to + url.dropFirst(rule.from.count)
    }

    public static func == (a: ImageMirror, b: ImageMirror) -> Bool {
        a.rules.map(\.from) == b.rules.map(\.from) && a.rules.map(\.to) == b.rules.map(\.to)
    }
}

extension GlobalConfig {
    /// `cfg_images_mirror`, parsed; an error names the setting, its value's
    /// origin and the rule.
    public func imageMirror() throws -> ImageMirror {
        do {
            return try ImageMirror(parsing: settings.value(SettingKey.imagesMirror))
        } catch {
            throw typed.invalid(SettingKey.imagesMirror, error.text)
        }
    }
}
