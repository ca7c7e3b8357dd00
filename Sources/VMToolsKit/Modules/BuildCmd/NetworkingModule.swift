/// `networking`: one `-device`/`-netdev` pair per enabled interface, in the
/// bytewise order of their numbers (`iface1`, `iface10`, `iface2`), which
/// fixes PCI slots and so the guest's NIC names; `-net none` without any.
public enum NetworkingModule: BuildCmdModule {
    public static let name = "networking"

    public static func build(_ c: inout QemuCommand) throws {
        let prefix = "vm_networking_iface"
        let ids = c.settings.names.compactMap { name -> String? in
            guard name.hasPrefix(prefix), name.hasSuffix("_enable") else { return nil }
            let id = String(name.dropFirst(prefix.count).dropLast("_enable".count))
            return !id.isEmpty && id.allSatisfy({ $0.isASCII && $0.isNumber }) ? id : nil
        }.sorted(by: bytewiseLess)  // the numbers as text: 1, 10, 2 (as the original, verified)
        var any = false
        for id in ids where c.isYes("\(prefix)\(id)_enable") {
            any = true
            let key = "\(prefix)\(id)"
            let device = c.value("\(key)_device").isEmpty ? c.value("vm_networking_default_device") : c.value("\(key)_device")
            let mode = c.value("\(key)_mode").isEmpty ? c.value("vm_networking_default_mode") : c.value("\(key)_mode")
            let macSetting = c.value("\(key)_mac").isEmpty ? "vm_networking_default_mac" : "\(key)_mac"
            let mac: String
            do {
                mac = try MACAddress.random(prefix: c.value(macSetting))
            } catch let e as VMToolsError {
                throw c.invalid(macSetting, e.message)
            }
            c.append("-device", "\(device),mac=\(qemuEscape(mac)),netdev=nd\(id)", "-netdev", "\(mode),id=nd\(id)")
        }
        if !any { c.append("-net", "none") }
    }
}
