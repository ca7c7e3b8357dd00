#if canImport(Glibc)
import Glibc
#endif

/// Port forwards and reaching the guest over SSH (vm.settings(5),
/// `vm_networking_ifaceN_forward`; vmup(1) `-w`).
extension SettingKey.NICKeys {
    public var forward: String { prefix + "_forward" }
}

extension SettingKey {
    public static let limitWaitGuest = "cfg_limit_waitguest"
}

/// One host port forwarded to a guest port on a user-mode NIC.
public struct PortForward: Equatable, Sendable {
    public enum Proto: String, Sendable { case tcp, udp }
    public var proto: Proto
    /// An IPv4 address: QEMU's `hostfwd` takes no host name.
    public var address: String
    /// 0: the kernel picks a free port when QEMU binds it.
    public var hostPort: Int
    public var guestPort: Int

    public init(_ proto: Proto, address: String = "127.0.0.1", hostPort: Int = 0, guestPort: Int) {
        self.proto = proto
        self.address = address
        self.hostPort = hostPort
        self.guestPort = guestPort
    }

    /// The SSH forward added when SSH is wanted and none is set.
    public static let implicitSSH = PortForward(.tcp, guestPort: 22)

    /// QEMU's `-netdev user` option.
    public var hostfwd: String { "hostfwd=\(proto.rawValue):\(address):\(hostPort)-:\(guestPort)" }

    /// As the setting writes it: `tcp:127.0.0.1:0:22`.
    public var description: String { "\(proto.rawValue):\(address):\(hostPort):\(guestPort)" }

    /// `[tcp:|udp:][ADDR:][HOSTPORT]:GUESTPORT`, or nil.
    public static func parse(_ text: String) -> PortForward? {
        var parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var proto = Proto.tcp
        if let first = parts.first, let p = Proto(rawValue: first), parts.count > 1 {
            proto = p
            parts.removeFirst()
        }
        var address = "127.0.0.1"
        if parts.count == 3 {
            address = parts.removeFirst()
            var a = in_addr()
            guard inet_pton(AF_INET, address, &a) == 1 else { return nil }
        }
        guard (1...2).contains(parts.count), let guest = port(parts[parts.count - 1]), guest > 0 else { return nil }
        var host = 0
        if parts.count == 2, !parts[0].isEmpty {
            guard let h = port(parts[0]) else { return nil }
            host = h
        }
        return PortForward(proto, address: address, hostPort: host, guestPort: guest)
    }

    private static func port(_ s: String) -> Int? {
        guard !s.isEmpty, s.count <= 5, s.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(s), n <= 65535 else { return nil }
        return n
    }
}

extension VMSettings.NIC {
    /// True for `user` and `user,…` modes: only slirp forwards ports.
    public var isUserMode: Bool { mode == "user" || mode == "nat" || mode.hasPrefix("user,") }

    /// True for user-mode and passt interfaces: the ones that forward ports.
    public var forwardsPorts: Bool { isUserMode || mode == "passt" }

    /// `vm_networking_ifaceN_forward`: space-separated forwards, only on a
    /// user-mode or passt interface.
    public func forwards() throws -> [PortForward] {
        let v = settings.table.value(keys.forward)
        let words = v.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard !words.isEmpty else { return [] }
        var list: [PortForward] = []
        for w in words {
            guard let f = PortForward.parse(w) else {
                throw settings.invalid(keys.forward, "'\(w)' is not [tcp:|udp:][ADDR:][HOSTPORT]:GUESTPORT (ADDR an IPv4 address, ports 0-65535)")
            }
            list.append(f)
        }
        guard forwardsPorts else {
            throw settings.invalid(keys.forward, "forwards need a user-mode interface (\(keys.mode) is '\(mode)')")
        }
        return list
    }

    /// True when the interface forwards guest TCP port 22, by this setting
    /// or a `hostfwd=` of its mode.
    public func forwardsSSH() throws -> Bool {
        if try forwards().contains(where: { $0.proto == .tcp && $0.guestPort == 22 }) { return true }
        // hostfwd=[tcp]:[ADDR]:PORT-[GUESTADDR]:22
        return isUserMode && mode.split(separator: ",").contains { opt in
            guard opt.hasPrefix("hostfwd=tcp:") || opt.hasPrefix("hostfwd=:"), let dash = opt.lastIndex(of: "-") else { return false }
            return opt[dash...].split(separator: ":").last == "22"
        }
    }
}

extension VMSettings {
    /// The implicit SSH forward (`tcp:127.0.0.1:0:22` on the first
    /// user-mode or passt interface) comes with cloud-init: a seeded key is only
    /// useful with a way in.
    public func wantsSSHForward() throws -> Bool { try cloudInitEnabled() }

    /// `cfg_limit_waitguest`: seconds `vmup -w` waits for the guest's SSH banner.
    public func waitGuestSeconds() throws -> Int {
        do { return try table.integer(SettingKey.limitWaitGuest, minimum: 1) } catch {
            throw invalid(SettingKey.limitWaitGuest, "expected a number of seconds, at least 1")
        }
    }

    /// For ssh.config: the login user and the private key beside the
    /// public key the seed gives the guest, with cloud-init on; the user as
    /// set, and no key, without it.
    public func sshLogin(home: String?, environment: [String: String]) throws -> (user: String, identityFile: String?) {
        guard try cloudInitEnabled() else { return (table.value(SettingKey.cloudInitUser), nil) }
        let user = try cloudInitUser(hostUser: SettingsDocument.currentUser())
        return (user, (try? cloudInitKeys(home: home, environment: environment))??.identityFile)
    }
}
