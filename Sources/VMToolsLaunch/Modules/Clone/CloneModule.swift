import VMToolsCore

/// Clone modules make a new VM's own settings and files when it is copied
/// or forked (vmtools(7) CUSTOMIZATION).
public protocol CloneModule: Sendable {
    static var name: String { get }
    static func clone(_ c: inout CloneJob) throws
}

public struct CloneJob {
    public enum Action: String, Sendable { case fork, copy, autonomous }

    public var action: Action
    public var source: ResolvedVM
    public var destination: String
    /// `-k`: keep unique properties (MAC addresses, cloud-init instance-id, UUID).
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
        CloudInitIdentityModule.name: CloudInitIdentityModule.self,
    ]
}

extension ModuleChoice {
    /// Runs a clone module, built-in or external. An external one runs in
    /// the new home and prints `NAME=VALUE` settings for the new VM; files it
    /// leaves in the new home are removed if the copy is undone.
    func clone(_ c: inout CloneJob) throws {
        guard let ext = external else {
            try ModuleRegistry.clone[name]!.clone(&c)
            return
        }
        var settings = c.source.settings
        for o in c.overrides { settings.set(o.name, o.value, .derived("clone module")) }
        settings.set(SettingKey.home, c.destination, .derived("the new VM's directory"))
        settings.set(SettingKey.name, c.destination.lastPathComponent, .derived("the new VM's directory name"))
        let before = Set((try? FileSystem.listDirectory(c.destination)) ?? [])
        let result = Result {
            try ext.run(settings: settings, home: c.destination, environment: c.environment, extra: [
                "VMTOOLS_SOURCE": c.source.home, "VMTOOLS_TARGET": c.destination, "VMTOOLS_ACTION": c.action.rawValue,
                "VMTOOLS_KEEP_UNIQUE": c.keepUnique ? "yes" : "no", "VMTOOLS_SNAPSHOT": c.snapshot ? "yes" : "no",
            ])
        }
        for entry in ((try? FileSystem.listDirectory(c.destination)) ?? []) where !before.contains(entry) {
            try c.transaction.record(.remove(c.destination.appendingPathComponent(entry)))
        }
        for (i, line) in try result.get().enumerated() {
            if let (_, setting, value) = try ext.parseSetting(line, number: i + 1, defaultKind: .override) {
                c.override(setting, value)
            }
        }
    }
}
