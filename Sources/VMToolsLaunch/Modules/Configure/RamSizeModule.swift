import VMToolsCore

/// `ram_size`: asks for the memory size; a bare number asks for the unit.
public enum RamSizeModule: ConfigureModule {
    public static let name = "ram_size"

    public static func configure(_ c: inout Configuration) throws {
        guard !c.prompter.assumeYes else { return }
        let current = c.value(SettingKey.ramSize)
        let answer = try c.prompter.askSize("RAM size", default: current, units: "MG", help: "A size such as 512M or 2G.")
        if answer != current { c.set(SettingKey.ramSize, answer, by: name) }
    }
}
