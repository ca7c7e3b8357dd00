/// Clone modules make a new VM's own settings and files when it is copied
/// or forked (modules.md §3.5, §8).
public protocol CloneModule: Sendable {
    static var name: String { get }
    static func clone(_ c: inout CloneJob) throws
}

public struct CloneJob {
    public enum Action: String, Sendable { case fork, copy, autonomous }

    public var action: Action
    public var source: ResolvedVM
    public var destination: String
    /// `-k`: keep unique properties (MAC addresses).
    public var keepUnique: Bool
    /// `-s`: reference images in snapshot mode instead of making new ones.
    public var snapshot: Bool
    /// `-z`: compress copied images.
    public var compress = false
    public var environment: [String: String]
    public var console: Console
    public var transaction: Transaction
    /// Settings the new VM's file records, in order (last override wins).
    public var overrides: [SettingsDocument.Entry] = []
    /// Images copied so far in this operation, source path → copy: a
    /// child's overlay is re-pointed at its parent's copy.
    public var imageMap: [String: String] = [:]

    public mutating func override(_ name: String, _ value: String) {
        overrides.removeAll { $0.name == name }
        overrides.append(.init(name, value))
    }

    public func value(_ name: String) -> String {
        overrides.last { $0.name == name }?.value ?? source.settings.value(name)
    }
}

extension ModuleRegistry {
    public static let clone: [String: any CloneModule.Type] = [
        NetworkingIfaceMacModule.name: NetworkingIfaceMacModule.self,
        StorageBackendModule.name: StorageBackendModule.self,
    ]

    /// `cfg_modules_clone`, with `-m` names added and `-M` names removed (whole words).
    static func cloneModules(_ settings: SettingsTable, add: [String], remove: [String], paths: SystemPaths) throws -> [any CloneModule.Type] {
        var names = (try? ExtendedString.splitList(settings.value("cfg_modules_clone"))) ?? []
        names.removeAll { remove.contains($0) }
        for a in add where !names.contains(a) { names.append(a) }
        return try names.map { name in
            try checkOverride(category: "clone", name: name, includeUser: settings.isYes("cfg_include_userhome"), paths: paths)
            guard let m = clone[name] else {
                throw VMToolsError(.failure, "cfg_modules_clone", "module '\(name)' not found (known: \(clone.keys.sorted().joined(separator: " ")))")
            }
            return m
        }
    }
}
