import VMToolsCore
import VMToolsQEMU
#if canImport(Glibc)
import Glibc
#endif

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
            let nic = c.vm.nic(id)
            if try nic.model() == .none { continue }
            any = true
            let mac = try nic.mac()
            guard let netdev = try netdev(&c, nic: nic, id: id, forwards: forwards[id] ?? []) else { continue }
            let device = try nic.device()
            c.append("-device", "\(device),mac=\(qemuEscape(mac)),netdev=nd\(id)", "-netdev", "\(netdev),id=nd\(id)")
            c.plan.machine.nics.append(.init(id: id, device: device, mode: try nic.model(), modeSetting: nic.modeSource, mac: mac,
                                             fixedMAC: !c.vm.table.value(nic.keys.mac).isEmpty, forwards: forwards[id] ?? []))
            // A fact of the plan: QEMU holds these forwards and says which ports over QMP.
            c.plan.notePassed(netdev: netdev)
        }
        if !any { c.append("-net", "none") }
        try planReadBack(&c, forwards: forwards)
    }

    /// The `-netdev` value of one interface's model (vm.settings(5)); nil for
    /// `none`. Bridge and tap are checked before a real start, so a missing
    /// permission fails here, saying what the administrator must do.
    static func netdev(_ c: inout QemuCommand, nic: VMSettings.NIC, id: String, forwards: [PortForward]) throws -> String? {
        switch try nic.model() {
        case .none:
            return nil
        case .nat(let options):
            return ([loopbackForwards(options.isEmpty ? "user" : "user," + options)] + forwards.map(\.hostfwd)).joined(separator: ",")
        case .raw(let mode):
            return ([loopbackForwards(mode)] + forwards.map(\.hostfwd)).joined(separator: ",")
        case .bridge(let bridge):
            if !c.dryRun {
                if let why = NetworkHostCheck.helperProblem(NetworkHostCheck.bridgeHelper) ?? NetworkHostCheck.aclProblem(NetworkHostCheck.bridgeACL, bridge: bridge) {
                    throw c.vm.invalid(nic.modeSource, why)
                }
            }
            return "bridge,br=\(bridge),helper=\(NetworkHostCheck.bridgeHelper)"
        case .tap(let ifname):
            if !c.dryRun, let why = NetworkHostCheck.tapProblem(ifname) { throw c.vm.invalid(nic.modeSource, why) }
            return "tap,ifname=\(ifname),script=no,downscript=no"
        case .passt:
            // QEMU 7.2 has no -netdev passt: passt serves a UNIX socket that
            // -netdev stream connects to; --one-off ends it with QEMU's connection.
            guard let passt = Subprocess.which("passt", path: c.environment["PATH"]) ?? (c.export ? "passt" : nil) else {
                throw c.vm.invalid(nic.modeSource, "passt is not installed (Debian: apt install passt)")
            }
            let socket = (c.runDirectory ?? c.home ?? ".").appendingPathComponent("passt-nd\(id).sock")
            let record = LiveForward.passtForwardsFile(socket: socket)
            let log = (c.runDirectory ?? c.home ?? ".").appendingPathComponent("passt-nd\(id).log")
            // passt would reuse a stale socket, but QEMU must wait for the
            // new one; the log and record are this start's alone.
            c.plan.filesToRemove += [socket, record, log].filter(FileSystem.lexists)
            // --runas: as root passt would become nobody, which cannot make
            // the socket in a home root owns. The guest sees slirp's
            // addresses (vm.settings(5)): a guest set up for `nat` keeps working.
            var arguments = ["--foreground", "--one-off", "--quiet", "--runas", "\(geteuid()):\(getegid())", "--socket", socket,
                             "-a", "10.0.2.15", "-n", "24", "-g", "10.0.2.2", "--dns-forward", "10.0.2.3"]
            let helper = c.plan.helpers.count
            for f in forwards {
                arguments.append(f.proto == .tcp ? "-t" : "-u")
                guard f.hostPort == 0 else {
                    c.plan.helperForwards.append(.init(nic: id, forward: f, helper: helper))
                    arguments.append(passtForward(f))
                    continue
                }
                // passt cannot say which port the kernel gave: the executor picks it.
                let name = "nd\(id)-forward\(c.plan.helperForwards.count)-port"
                c.plan.portChoices.append(.init(name: name, rule: .kernel(f), setting: SettingKey.nic(id).forward))
                c.plan.helperForwards.append(.init(nic: id, forward: f, helper: helper, port: name))
                arguments.append("\(f.address)/\(LaunchPlan.placeholder(name, preview: "0")):\(f.guestPort)")
            }
            c.plan.helpers.append(.init(executable: passt, arguments: arguments, readyPath: socket, forwardsFile: record, log: log))
            return "stream,server=off,addr.type=unix,addr.path=\(qemuEscape(socket))"
        }
    }

    /// passt's `-t`/`-u` value: `ADDR/PORT:GUESTPORT`.
    static func passtForward(_ f: PortForward) -> String { "\(f.address)/\(f.hostPort):\(f.guestPort)" }

    /// `vm_networking_ifaceN_forward` of every enabled interface, by id; with
    /// `implicitSSH` and no forward to guest TCP port 22 anywhere, one from a
    /// kernel-chosen loopback port on the first user-mode or passt interface.
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
        if implicitSSH, !ssh, let first = vm.nicIDs.first(where: { vm.nic($0).enabled && vm.nic($0).forwardsPorts }) {
            byID[first, default: []].append(.implicitSSH)
        }
        return byID
    }

    /// Forwards are read back once QEMU runs (their real ports); a VM home
    /// with one to guest port 22 gets its ssh.config (vmup(1)).
    static func planReadBack(_ c: inout QemuCommand, forwards: [String: [PortForward]]) throws {
        guard c.plan.userForwards || !c.plan.helperForwards.isEmpty else { return }
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
