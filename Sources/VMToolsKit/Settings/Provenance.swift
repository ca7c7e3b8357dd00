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

/// A set of `cfg_*`/`vm_*` values, each with its provenance.
public struct SettingsTable: Equatable, Sendable {
    public private(set) var entries: [String: SettingEntry] = [:]

    public init() {}

    public subscript(name: String) -> String? { entries[name]?.value }

    public func value(_ name: String) -> String { entries[name]?.value ?? "" }

    public func contains(_ name: String) -> Bool { entries[name] != nil }

    public func provenance(_ name: String) -> Provenance? { entries[name]?.provenance }

    public var names: [String] { entries.keys.sorted(by: bytewiseLess) }

    public mutating func set(_ name: String, _ value: String, _ provenance: Provenance) {
        // Mutate in place: copying the entry out and back would copy its
        // whole history on every assignment (quadratic on long files).
        if let i = entries.index(forKey: name) {
            let previous = SettingEntry.Overridden(value: entries.values[i].value, provenance: entries.values[i].provenance)
            entries.values[i].overridden.append(previous)
            entries.values[i].value = value
            entries.values[i].provenance = provenance
        } else {
            entries[name] = SettingEntry(value: value, provenance: provenance)
        }
    }

    public func isYes(_ name: String) -> Bool { entries[name]?.value == "yes" }

    /// An integer setting, with a clear error naming the setting and its origin.
    public func integer(_ name: String, minimum: Int = 0) throws -> Int {
        let v = value(name)
        guard let n = Int(v), n >= minimum, v.allSatisfy(\.isASCII) else {
            let from = provenance(name).map { " (from \($0))" } ?? ""
            throw VMToolsError(.failure, name, "'\(v)' is not an integer ≥ \(minimum)\(from)")
        }
        return n
    }
}

/// C-locale (`LC_ALL=C sort`) order.
func bytewiseLess(_ a: String, _ b: String) -> Bool {
    // On contiguous bytes: the generic UTF8View comparison dominated sorting
    // the names of a large settings file.
    var a = a, b = b
    return a.withUTF8 { x in
        b.withUTF8 { y in
            for i in 0..<min(x.count, y.count) where x[i] != y[i] { return x[i] < y[i] }
            return x.count < y.count
        }
    }
}
