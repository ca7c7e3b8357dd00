/// A VM with every layer applied, and what it was built from.
public struct ResolvedVM: Sendable {
    public var home: String
    public var settingsPath: String
    /// The VM's own file as read.
    public var file: VMSettingsFile
    public var settings: SettingsTable
    /// Canonical home of the nearest parent, if any.
    public var parent: String? { ancestors.first }
    /// Canonical homes of every ancestor, nearest first.
    public var ancestors: [String]
    /// Every template applied (the VM's, its ancestors', nested ones and `-t`).
    public var templates: [String]
    /// Template files used, by name.
    public var templateFiles: [String: String]

    public var name: String { VMSettings(settings).name }
}
