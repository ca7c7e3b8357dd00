import VMToolsCore

/// Configure modules prepare a new VM (`vmcreate`) or a bare image (`vmup
/// FILE`) before its command line is built (vmtools(7) CUSTOMIZATION).
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
    /// Imported images to convert (`storage_hdd_import`): the plan's first
    /// steps, which the executor carries out.
    public var conversions: [LaunchPlan.Conversion] = []
    /// Archives unpacked to read them (`.ova`): the executor removes them
    /// once converted; the caller, if the start ends before.
    package var workDirectories: [WorkDirectory] = []

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
    /// The settings, typed and validated (`VMSettings`).
    public var vm: VMSettings { VMSettings(settings) }
}

extension ModuleRegistry {
    public static let configureTemplates: [String: any ConfigureModule.Type] = [AutodetectModule.name: AutodetectModule.self]

    public static let configureSettings: [String: any ConfigureModule.Type] = {
        let all: [any ConfigureModule.Type] = [CpuCountModule.self, RamSizeModule.self, NetworkingAutoModule.self, CloudImageModule.self,
                                               StorageHddImportModule.self, StorageHdd1CreateSizeModule.self]
        return Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
    }()
}

extension ModuleChoice {
    /// Runs a configure module, built-in or external (templates: `template
    /// NAME` lines; settings: `NAME=VALUE`, `override …`, `assign …`).
    func configure(_ c: inout Configuration) throws {
        guard let ext = external else {
            let table = category == .configureTemplates ? ModuleRegistry.configureTemplates : ModuleRegistry.configureSettings
            try table[name]!.configure(&c)
            return
        }
        for (i, line) in try ext.run(settings: c.settings, home: c.home, environment: c.environment).enumerated() {
            if category == .configureTemplates {
                let t = line.trimmingTrailingWhitespace()
                if t.isEmpty || t.hasPrefix("#") { continue }
                let template = String(t.dropFirst("template ".count))
                guard t.hasPrefix("template "), SettingName.isTemplateName(template) else {
                    throw VMToolsError(.failure, ext.path, "output line \(i + 1): expected 'template NAME', got '\(line)'")
                }
                if !c.templates.contains(template) { c.templates.append(template) }
            } else if let (kind, setting, value) = try ext.parseSetting(line, number: i + 1, defaultKind: .set) {
                switch kind {
                case .set: c.set(setting, value, by: name)
                case .override: c.override(setting, value, by: name)
                case .assign: c.assign(setting, value, by: name)
                }
            }
        }
    }
}
