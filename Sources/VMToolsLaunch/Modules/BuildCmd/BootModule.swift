/// `boot`: `-boot order=…[,menu=on]`.
public enum BootModule: BuildCmdModule {
    public static let name = "boot"

    public static func build(_ c: inout QemuCommand) throws {
        let order = c.value("vm_boot_order")
        guard order.allSatisfy({ "abcdnop".contains($0) }) else {
            throw c.invalid("vm_boot_order", "boot order letters are a, b, c, d, n, o, p")
        }
        var parts: [String] = []
        if !order.isEmpty { parts.append("order=\(qemuEscape(order))") }
        if c.isYes("vm_boot_menu") { parts.append("menu=on") }
        if !parts.isEmpty { c.append("-boot", parts.joined(separator: ",")) }
    }
}
