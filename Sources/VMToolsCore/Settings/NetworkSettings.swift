import CSystem
#if canImport(Glibc)
import Glibc
#endif

/// The network models of `vm_networking_ifaceN_mode` (vm.settings(5)):
/// named models, or a raw QEMU `-netdev` value for power users.
public enum NetworkModel: Equatable, Sendable {
    /// User-mode NAT (`-netdev user`); `user` and `user,…` are this too.
    case nat(options: String)
    case bridge(String)
    case tap(String)
    case passt
    case none
    /// Anything else, passed to `-netdev` as written.
    case raw(String)

    /// A Linux interface name: 1-15 bytes, no `/`, blank, `:` or comma.
    public static func isInterfaceName(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 15 && s != "." && s != ".."
            && s.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: ":") && $0 != UInt8(ascii: ",") }
    }
}

extension VMSettings.NIC {
    /// The interface's model; a named model with a bad argument fails naming
    /// the setting it comes from.
    /// The setting the mode comes from: the interface's own or the default.
    public var modeSource: String { settings.table.value(keys.mode).isEmpty ? SettingKey.defaultNICMode : keys.mode }

    public func model() throws -> NetworkModel {
        let m = mode
        let source = modeSource
        func name(after prefix: String, _ what: String) throws -> String {
            let n = String(m.dropFirst(prefix.count))
            guard NetworkModel.isInterfaceName(n) else {
                throw settings.invalid(source, "\(what) must be an interface name (1-15 characters, no '/', ':', ',' or blanks), as in \(prefix)\(what == "BRIDGE" ? "br0" : "tap0")")
            }
            return n
        }
        switch m {
        case "": throw settings.invalid(source, "expected nat, bridge:BRIDGE, tap:IFNAME, passt, none or a QEMU -netdev value")
        case "nat": return .nat(options: "")
        case "user": return .nat(options: "")
        case "passt": return .passt
        case "none": return .none
        default:
            if m.hasPrefix("user,") { return .nat(options: String(m.dropFirst("user,".count))) }
            if m.hasPrefix("bridge:") { return .bridge(try name(after: "bridge:", "BRIDGE")) }
            if m.hasPrefix("tap:") { return .tap(try name(after: "tap:", "IFNAME")) }
            for named in ["nat", "passt", "none"] where m.hasPrefix(named + ":") || m.hasPrefix(named + ",") {
                throw settings.invalid(source, "\(named) takes no argument")
            }
            return .raw(m)
        }
    }
}

/// What a bridge or tap interface needs from the host before QEMU starts
/// (vm.settings(5), `vm_networking_ifaceN_mode`); each failure says what the
/// administrator must do.
public enum NetworkHostCheck {
    /// Where Debian's QEMU has its bridge helper and reads the ACL.
    public static let bridgeHelper = "/usr/lib/qemu/qemu-bridge-helper"
    public static let bridgeACL = "/etc/qemu/bridge.conf"

    /// nil when the helper is setuid root or has cap_net_admin in its
    /// permitted set; else why not.
    public static func helperProblem(_ helper: String, euid: uid_t = geteuid()) -> String? {
        var st = stat()
        guard stat(helper, &st) == 0 else { return "\(helper) is missing (Debian: apt install qemu-system-common)" }
        // QEMU runs it as its own user: root needs neither.
        if euid == 0 { return nil }
        let fix = "as root run: setcap cap_net_admin+ep \(helper)"
        if st.st_mode & S_ISUID != 0 && st.st_uid == 0 { return nil }
        // security.capability: vfs_cap_data, little-endian: magic_etc, then
        // (permitted, inheritable) for bits 0-31; CAP_NET_ADMIN is bit 12.
        var buffer = [UInt8](repeating: 0, count: 24)
        let n = csystem_getxattr(helper, "security.capability", &buffer, buffer.count)
        guard n >= 12 else { return "\(helper) is neither setuid root nor has cap_net_admin: \(fix)" }
        let permitted = UInt32(buffer[4]) | UInt32(buffer[5]) << 8 | UInt32(buffer[6]) << 16 | UInt32(buffer[7]) << 24
        return permitted & (1 << 12) != 0 ? nil : "\(helper) lacks cap_net_admin: \(fix)"
    }

    /// nil when the ACL (and the files it includes) allows `bridge` as the
    /// helper reads it: `allow all` or `allow BRIDGE`, a later `deny` wins.
    public static func aclProblem(_ acl: String, bridge: String) -> String? {
        var seen: Set<String> = []
        let fix = "as root add the line 'allow \(bridge)' to \(acl)"
        guard FileSystem.exists(acl) else { return "\(acl) is missing: \(fix)" }
        guard let allowed = aclAllows(acl, bridge: bridge, seen: &seen) else { return "\(acl) cannot be read: make it readable by the helper" }
        return allowed ? nil : "\(acl) does not allow bridge \(bridge): \(fix)"
    }

    /// qemu-bridge-helper's rules: deny wins over allow, whatever the order.
    private static func aclAllows(_ path: String, bridge: String, seen: inout Set<String>) -> Bool? {
        guard seen.insert(path).inserted, let text = (try? FileSystem.readTextIfExists(path)) ?? nil else { return nil }
        var allow = false
        var deny = false
        for line in text.split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard words.count >= 2, !words[0].hasPrefix("#") else { continue }
            switch words[0] {
            case "allow": if words[1] == "all" || words[1] == bridge { allow = true }
            case "deny": if words[1] == "all" || words[1] == bridge { deny = true }
            case "include": if aclAllows(words[1], bridge: bridge, seen: &seen) == true { allow = true }
            default: continue
            }
        }
        return allow && !deny
    }

    /// nil when `ifname` is a tap device this user may attach to: it exists
    /// and its owner (or group) is unset or ours.
    public static func tapProblem(_ ifname: String, sysfs: String = "/sys/class/net") -> String? {
        let dir = sysfs + "/" + ifname
        guard FileSystem.exists(dir) else {
            return "there is no network interface \(ifname): as root run: ip tuntap add dev \(ifname) mode tap user \(SettingsDocument.currentUser()) && ip link set \(ifname) up"
        }
        guard FileSystem.exists(dir + "/tun_flags") else { return "\(ifname) is not a tap device" }
        func id(_ file: String) -> Int? { ((try? FileSystem.readTextIfExists(dir + "/" + file)) ?? nil).flatMap { Int($0.filter { !$0.isWhitespace }) } }
        let uid = getuid()
        guard uid != 0 else { return nil }
        let owner = id("owner") ?? -1
        let group = id("group") ?? -1
        if owner == -1 && group == -1 { return "\(ifname) has no owner: as root run: ip tuntap del dev \(ifname) mode tap && ip tuntap add dev \(ifname) mode tap user \(SettingsDocument.currentUser())" }
        if owner == Int(uid) || (group != -1 && group == Int(getgid())) { return nil }
        return "\(ifname) belongs to another user: as root run: ip tuntap del dev \(ifname) mode tap && ip tuntap add dev \(ifname) mode tap user \(SettingsDocument.currentUser())"
    }
}
