import VMToolsCore
/// `ram`: `-m SIZE`, SIZE = digits and M or G.
public enum RamModule: BuildCmdModule {
    public static let name = "ram"

    public static func build(_ c: inout QemuCommand) throws {
        let size = try c.vm.ramSize()
        if let size { c.append("-m", size.text) }
        c.plan.machine.ram = size
    }
}
