/// The command-line layer (vmtools(1) SETTINGS PRECEDENCE): `-o` overrides (last wins) and
/// flag settings such as `-s` (first wins, and never beat an `-o`). It is
/// applied after every other layer.
public struct CommandLineSettings: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var value: String
        /// How it was given: `-o`, `-s`, `-r` …
        public var flag: String
    }

    public private(set) var entries: [Entry] = []
    /// Templates added with `-t`, in order, without duplicates.
    public private(set) var templates: [String] = []

    public init() {}

    /// `-o NAME=VALUE`: replaces any earlier value and moves it to the end.
    public mutating func override(_ name: String, _ value: String, flag: String = "-o") {
        entries.removeAll { $0.name == name }
        entries.append(Entry(name: name, value: value, flag: flag))
    }

    /// A flag's setting: ignored when the name is already in the list.
    public mutating func set(_ name: String, _ value: String, flag: String) {
        guard !entries.contains(where: { $0.name == name }) else { return }
        entries.append(Entry(name: name, value: value, flag: flag))
    }

    public mutating func addTemplate(_ name: String) throws {
        guard SettingName.isTemplateName(name) else {
            throw VMToolsError.usage("invalid template name '\(name)' (letters, digits and _ only)")
        }
        if !templates.contains(name) { templates.append(name) }
    }

    public func value(_ name: String) -> String? { entries.last { $0.name == name }?.value }

    /// Parses the argument of `-o`: `NAME=VALUE`, both non-empty, the value raw.
    public mutating func parseOverride(_ argument: String) throws {
        guard let eq = argument.firstIndex(of: "="), eq != argument.startIndex,
              argument.index(after: eq) != argument.endIndex else {
            throw VMToolsError.usage("malformed option -o '\(argument)': expected setting=value (both non-empty)")
        }
        let name = String(argument[..<eq])
        let value = String(argument[argument.index(after: eq)...])
        guard SettingName.isSetting(Substring(name)) else {
            throw VMToolsError.usage("-o \(name): not a setting name (settings start with cfg_ or vm_)")
        }
        if name == SettingKey.home {
            throw VMToolsError.usage("-o vm_home: a VM's home is the directory it is in; give the directory as an operand")
        }
        if value.contains("\n") || value.contains("\0") {
            throw VMToolsError.usage("-o \(name): newline and NUL characters are not allowed in values")
        }
        override(name, value)
    }
}
