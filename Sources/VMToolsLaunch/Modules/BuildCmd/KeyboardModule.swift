import VMToolsCore
/// `keyboard`: `-k MAP`.
public enum KeyboardModule: BuildCmdModule {
    public static let name = "keyboard"

    public static func build(_ c: inout QemuCommand) throws {
        let map = try c.vm.keyboardMapping()
        if !map.isEmpty { c.append("-k", map) }
        c.plan.machine.keyboard = map.isEmpty ? nil : map
    }
}
