import VMToolsCore
/// `name`: `-name guest=NAME`, commas doubled. The key is explicit: QEMU
/// reads a bare `x=y` as its own option `x` (`process=` renames the process).
public enum NameModule: BuildCmdModule {
    public static let name = "name"

    public static func build(_ c: inout QemuCommand) throws {
        let n = c.vm.name
        c.plan.machine.name = n
        if !n.isEmpty { c.append("-name", "guest=" + qemuEscape(n)) }
    }
}
