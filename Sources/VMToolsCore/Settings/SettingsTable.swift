/// A set of `cfg_*`/`vm_*` values, each with its provenance.
public struct SettingsTable: Equatable, Sendable {
    public private(set) var entries: [String: SettingEntry] = [:]

    public init() {}

    public subscript(name: String) -> String? { entries[name]?.value }

    public func value(_ name: String) -> String { entries[name]?.value ?? "" }

    public func contains(_ name: String) -> Bool { entries[name] != nil }

    public func provenance(_ name: String) -> Provenance? { entries[name]?.provenance }

    public var names: [String] { entries.keys.sorted(by: bytewiseLess) }

    /// The names in no order: for callers that filter and sort what they
    /// keep (sorting all ~150 names cost a fifth of `vmup -n` when done
    /// for each numbered kind of setting).
    public var unorderedNames: Dictionary<String, SettingEntry>.Keys { entries.keys }

    /// The names that start with `prefix`, in order.
    public func names(withPrefix prefix: String) -> [String] {
        entries.keys.filter { $0.hasPrefix(prefix) }.sorted(by: bytewiseLess)
    }

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
