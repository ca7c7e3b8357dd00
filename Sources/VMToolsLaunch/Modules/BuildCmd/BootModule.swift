import VMToolsCore
/// `boot`: `-boot order=…[,menu=on]`.
public enum BootModule: BuildCmdModule {
    public static let name = "boot"

    public static func build(_ c: inout QemuCommand) throws {
        let order = try c.vm.bootOrder()
        var parts: [String] = []
        if !order.isEmpty { parts.append("order=\(qemuEscape(order))") }
        if c.vm.bootMenu { parts.append("menu=on") }
        if !parts.isEmpty { c.append("-boot", parts.joined(separator: ",")) }
    }
}
