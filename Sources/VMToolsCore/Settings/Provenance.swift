/// Where a resolved value came from. vminfo shows it (`-p`, `-j`).
public enum Provenance: Equatable, Sendable, CustomStringConvertible {
    /// Compiled into vmtools (the same values as the shipped etc/vmtools.conf).
    case builtin
    /// A `vmtools.conf`: shipped (`share`), system (`etc`) or the user's.
    case config(layer: ConfigLayer, path: String, line: Int)
    /// A template file, applied at a `template` line or by `-t`.
    case template(name: String, path: String, line: Int)
    /// A `vm.settings`; depth 0 is the VM itself, 1 its parent, and so on.
    case vmFile(path: String, line: Int, depth: Int)
    /// The command line (`-o name=value`, or a flag such as `-s`).
    case commandLine(String)
    /// Set by vmtools itself (for example `vm_home`).
    case derived(String)

    public var description: String {
        switch self {
        case .builtin: return "built-in default"
        case let .config(_, path, line): return "\(path):\(line)"
        case let .template(name, path, line): return "template \(name) (\(path):\(line))"
        case let .vmFile(path, line, _): return "\(path):\(line)"
        case let .commandLine(flag): return "command line (\(flag))"
        case let .derived(why): return why
        }
    }

    /// A short layer name for JSON and tables.
    public var layer: String {
        switch self {
        case .builtin: return "default"
        case let .config(layer, _, _): return layer.rawValue
        case .template: return "template"
        case let .vmFile(_, _, depth): return depth == 0 ? "vm" : "parent"
        case .commandLine: return "command-line"
        case .derived: return "derived"
        }
    }
}

public enum ConfigLayer: String, Sendable {
    case share, etc, user
}

public struct SettingEntry: Equatable, Sendable {
    public var value: String
    public var provenance: Provenance
    /// Values this one replaced, oldest first.
    public var overridden: [Overridden] = []

    public struct Overridden: Equatable, Sendable {
        public var value: String
        public var provenance: Provenance
    }
}
