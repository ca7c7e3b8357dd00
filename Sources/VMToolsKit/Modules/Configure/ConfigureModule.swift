/// Configure modules prepare a new VM (`vmcreate`) or a bare image (`vmup
/// FILE`) before its command line is built (modules.md §3.2, §3.3, §4, §5).
public protocol ConfigureModule: Sendable {
    static var name: String { get }
    static func configure(_ c: inout Configuration) throws
}

/// What configure modules read and change.
public struct Configuration {
    public var settings: SettingsTable
    /// The settings list: what a new VM's file records, in order. First set wins.
    public var recorded: [SettingsDocument.Entry] = []
    public var templates: [String]
    public var home: String?
    public var global: GlobalConfig
    public var environment: [String: String]
    public var prompter: Prompter
    public var console: Console
    /// Files made during configuration (converted images), removed on failure.
    public var createdFiles: [String] = []

    /// *set*: recorded unless the name is already recorded (the command line wins).
    public mutating func set(_ name: String, _ value: String, by module: String) {
        guard !recorded.contains(where: { $0.name == name }) else { return }
        recorded.append(.init(name, value))
        settings.set(name, value, .derived("configure module \(module)"))
    }

    /// *override*: replaces any recorded value.
    public mutating func override(_ name: String, _ value: String, by module: String) {
        recorded.removeAll { $0.name == name }
        recorded.append(.init(name, value))
        settings.set(name, value, .derived("configure module \(module)"))
    }

    /// A value for this run only, never saved (the one-shot creation size).
    public mutating func assign(_ name: String, _ value: String, by module: String) {
        settings.set(name, value, .derived("configure module \(module)"))
    }

    public func value(_ name: String) -> String { settings.value(name) }
}

extension ModuleRegistry {
    public static let configureTemplates: [String: any ConfigureModule.Type] = [AutodetectModule.name: AutodetectModule.self]

    public static let configureSettings: [String: any ConfigureModule.Type] = {
        let all: [any ConfigureModule.Type] = [CpuCountModule.self, RamSizeModule.self, NetworkingAutoModule.self,
                                               StorageHddImportModule.self, StorageHdd1CreateSizeModule.self]
        return Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
    }()

    static func configureModules(_ setting: String, category: String, table: [String: any ConfigureModule.Type],
                                 settings: SettingsTable, paths: SystemPaths) throws -> [any ConfigureModule.Type] {
        let names = (try? ExtendedString.splitList(settings.value(setting))) ?? []
        return try names.map { name in
            try checkOverride(category: category, name: name, includeUser: settings.isYes("cfg_include_userhome"), paths: paths)
            guard let m = table[name] else {
                throw VMToolsError(.failure, setting, "module '\(name)' not found (known: \(table.keys.sorted().joined(separator: " ")))")
            }
            return m
        }
    }
}
