/// `ram`: `-m SIZE`, SIZE = digits and M or G.
public enum RamModule: BuildCmdModule {
    public static let name = "ram"

    public static func build(_ c: inout QemuCommand) throws {
        let size = c.value("vm_ram_size")
        guard !size.isEmpty else { return }
        guard isSize(size, units: "MG") else {
            throw c.invalid("vm_ram_size", "expected a size such as 512M or 2G")
        }
        c.append("-m", size)
    }
}
