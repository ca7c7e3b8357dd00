import VMToolsCore

/// `networking`: one `-device`/`-netdev` pair per enabled interface, in the
/// bytewise order of their numbers (`iface1`, `iface10`, `iface2`), which
/// fixes PCI slots and so the guest's NIC names; `-net none` without any.
/// A port forward without a host address listens on 127.0.0.1, not on
/// QEMU's every interface; `vm_networking_ifaceN_forward` adds `hostfwd=`
/// options (vm.settings(5)).
public enum NetworkingModule: BuildCmdModule {
    public static let name = "networking"

    public static func build(_ c: inout QemuCommand) throws {
        var any = false
        let forwards = try forwards(c.vm, implicitSSH: c.vm.wantsSSHForward())
        // The numbers as text: 1, 10, 2 (as the original, verified).
        for id in c.vm.nicIDs where c.vm.nic(id).enabled {
            any = true
            let nic = c.vm.nic(id)
            let mac = try nic.mac()
            let netdev = ([loopbackForwards(nic.mode)] + (forwards[id] ?? []).map(\.hostfwd)).joined(separator: ",")
            c.append("-device", "\(nic.device),mac=\(qemuEscape(mac)),netdev=nd\(id)", "-netdev", "\(netdev),id=nd\(id)")
        }
        if !any { c.append("-net", "none") }
        try planReadBack(&c, forwards: forwards)
    }

    /// `vm_networking_ifaceN_forward` of every enabled interface, by id; with
    /// `implicitSSH` and no forward to guest TCP port 22 anywhere, one from a
    /// kernel-chosen loopback port on the first user-mode interface.
    static func forwards(_ vm: VMSettings, implicitSSH: Bool) throws -> [String: [PortForward]] {
        var byID: [String: [PortForward]] = [:]
        var fixed: Set<String> = []
        var ssh = false
        for id in vm.nicIDs where vm.nic(id).enabled {
            let nic = vm.nic(id)
            let list = try nic.forwards()
            for f in list where f.hostPort != 0 {
                // Two forwards of one port would only fail in QEMU, less clearly.
                guard fixed.insert("\(f.proto) \(f.address) \(f.hostPort)").inserted else {
                    throw vm.invalid(nic.keys.forward, "host port \(f.proto.rawValue):\(f.address):\(f.hostPort) is forwarded twice")
                }
            }
            if try nic.forwardsSSH() { ssh = true }
            byID[id] = list
        }
        if implicitSSH, !ssh, let first = vm.nicIDs.first(where: { vm.nic($0).enabled && vm.nic($0).isUserMode }) {
            byID[first, default: []].append(.implicitSSH)
        }
        return byID
    }

    /// Forwards are read back once QEMU runs (their real ports); a VM home
    /// with one to guest port 22 gets its ssh.config (vmup(1)).
    static func planReadBack(_ c: inout QemuCommand, forwards: [String: [PortForward]]) throws {
        guard c.argv.contains(where: { $0.hasPrefix("user") && $0.contains("hostfwd=") }) else { return }
        var ssh: LaunchPlan.SSHPlan?
        var sshWanted = forwards.values.contains { $0.contains { $0.proto == .tcp && $0.guestPort == 22 } }
        for id in c.vm.nicIDs where c.vm.nic(id).enabled { sshWanted = try sshWanted || c.vm.nic(id).forwardsSSH() }
        if sshWanted {
            let login = try c.vm.sshLogin(home: c.home, environment: c.environment)
            // The cloudinit module, later in the list, sets a new instance's id.
            ssh = LaunchPlan.SSHPlan(name: c.vm.name, home: c.home, user: login.user,
                                     identityFile: login.identityFile, instanceID: c.vm.cloudInitInstanceID)
        }
        c.plan.readBack.append(.forwards(ssh: ssh))
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
