import VMToolsCore
/// `boot`: `-boot order=…[,menu=on]`, and a direct kernel boot (`-kernel`,
/// `-initrd`, `-append`; vm.settings(5)) for images without a boot loader.
public enum BootModule: BuildCmdModule {
    public static let name = "boot"

    public static func build(_ c: inout QemuCommand) throws {
        let order = try c.vm.bootOrder()
        var parts: [String] = []
        if !order.isEmpty { parts.append("order=\(qemuEscape(order))") }
        if c.vm.bootMenu { parts.append("menu=on") }
        if !parts.isEmpty { c.append("-boot", parts.joined(separator: ",")) }
        c.plan.machine.bootOrder = order
        c.plan.machine.bootMenu = c.vm.bootMenu
        // Whole arguments, not option values: no comma doubling.
        guard let direct = try c.vm.directBoot(home: c.home, environment: c.environment) else { return }
        c.plan.machine.directBoot = direct
        c.append("-kernel", direct.kernel)
        if let initrd = direct.initrd { c.append("-initrd", initrd) }
        if let append = direct.append { c.append("-append", append) }
    }
}
