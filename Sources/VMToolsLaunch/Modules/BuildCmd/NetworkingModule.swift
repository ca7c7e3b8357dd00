import VMToolsCore

/// `networking`: one `-device`/`-netdev` pair per enabled interface, in the
/// bytewise order of their numbers (`iface1`, `iface10`, `iface2`), which
/// fixes PCI slots and so the guest's NIC names; `-net none` without any.
/// A port forward without a host address listens on 127.0.0.1, not on
/// QEMU's every interface (vm.settings(5)).
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
            c.append("-device", "\(device),mac=\(qemuEscape(mac)),netdev=nd\(id)", "-netdev", "\(loopbackForwards(mode)),id=nd\(id)")
        }
        if !any { c.append("-net", "none") }
    }

    /// `hostfwd=[tcp|udp]:[hostaddr]:hostport-…` with an empty host address
    /// gets 127.0.0.1; everything else of the mode is kept as written (it is
    /// not escaped: it holds options of its own).
    static func loopbackForwards(_ mode: String) -> String {
        var parts: [String] = []
        var rest = Substring(mode)
        while true {
            // Split at single commas; `,,` is a literal comma inside a value.
            var end = rest.startIndex
            while end < rest.endIndex {
                if rest[end] == "," {
                    let next = rest.index(after: end)
                    if next < rest.endIndex, rest[next] == "," { end = rest.index(after: next); continue }
                    break
                }
                end = rest.index(after: end)
            }
            parts.append(String(rest[..<end]))
            guard end < rest.endIndex else { break }
            rest = rest[rest.index(after: end)...]
        }
        return parts.map { part in
            guard part.hasPrefix("hostfwd=") else { return part }
            let value = part.dropFirst("hostfwd=".count)
            guard let c1 = value.firstIndex(of: ":") else { return part }
            let afterProto = value[value.index(after: c1)...]
            guard afterProto.hasPrefix(":") else { return part }
            return "hostfwd=\(value[..<c1]):127.0.0.1\(afterProto)"
        }.joined(separator: ",")
    }
}
