/// The global configuration after defaults, `<share>`, `<etc>`, `<user>` and
/// the command line's `cfg_*` values.
public struct GlobalConfig: Sendable {
    public var settings: SettingsTable {
        didSet { fileNames = VMFileNames(settings) }
    }
    /// Configuration files actually read, in order.
    public var files: [String]
    /// Names a `-o` may set: the defaults and whatever a configuration file defines.
    public var knownNames: Set<String>
    public var paths: SystemPaths

    public var includeUser: Bool { typed.includeUserHome }

    /// The settings, typed and validated (`VMSettings`): limits, prompts, the QEMU prefix.
    public var typed: VMSettings { VMSettings(settings) }

    /// The names of the files in every VM home, typed; stored, as every
    /// path a command builds asks for them.
    public private(set) var fileNames: VMFileNames

    public init(settings: SettingsTable, files: [String], knownNames: Set<String>, paths: SystemPaths) {
        self.settings = settings
        self.files = files
        self.knownNames = knownNames
        self.paths = paths
        fileNames = VMFileNames(settings)
    }

    /// The settings file of the VM home `home`.
    public func settingsPath(in home: String) -> String { home.appendingPathComponent(fileNames.settings) }
}
