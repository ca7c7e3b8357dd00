import VMToolsCore

/// `macos` (not in the default list): the Apple SMC device.
public enum MacosModule: BuildCmdModule {
    public static let name = "macos"

    public static func build(_ c: inout QemuCommand) throws {
        let key = c.vm.macosOSK
        if !key.isEmpty { c.append("-device", "isa-applesmc,osk=\(qemuEscape(key))") }
        c.plan.machine.macosOSK = key.isEmpty ? nil : key
    }
}
