import VMToolsCore

/// `networking`: one `-device`/`-netdev` pair per enabled interface, in the
/// bytewise order of their numbers (`iface1`, `iface10`, `iface2`), which
/// fixes PCI slots and so the guest's NIC names; `-net none` without any.
/// A port forward without a host address listens on 127.0.0.1, not on
/// QEMU's every interface (vm.settings(5)).
public enum NetworkingModule: BuildCmdModule {
    public static let name = "networking"

    public static func build(_ c: inout QemuCommand) throws {
        var any = false
        // The numbers as text: 1, 10, 2 (as the original, verified).
        for id in c.vm.nicIDs where c.vm.nic(id).enabled {
            any = true
            let nic = c.vm.nic(id)
            let mac = try nic.mac()
            c.append("-device", "\(nic.device),mac=\(qemuEscape(mac)),netdev=nd\(id)", "-netdev", "\(loopbackForwards(nic.mode)),id=nd\(id)")
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
