import VMToolsCore
/// `ram`: `-m SIZE`, SIZE = digits and M or G.
public enum RamModule: BuildCmdModule {
    public static let name = "ram"

    public static func build(_ c: inout QemuCommand) throws {
        if let size = try c.vm.ramSize() { c.append("-m", size.text) }
    }
}
