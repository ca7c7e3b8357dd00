import VMToolsCore
/// `name`: `-name NAME`, commas doubled.
public enum NameModule: BuildCmdModule {
    public static let name = "name"

    public static func build(_ c: inout QemuCommand) throws {
        let n = c.vm.name
        if !n.isEmpty { c.append("-name", qemuEscape(n)) }
    }
}
