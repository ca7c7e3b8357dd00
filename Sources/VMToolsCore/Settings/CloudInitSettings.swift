#if canImport(Glibc)
import Glibc
#endif

/// cloud-init NoCloud, the identity of a clone, and unattended installs
/// (vm.settings(5), CLOUD-INIT and UNATTENDED INSTALLS).
extension SettingKey {
    public static let cloudInitEnable = "vm_cloudinit_enable"
    public static let cloudInitUser = "vm_cloudinit_user"
    public static let cloudInitSSHKey = "vm_cloudinit_sshkey"
    public static let cloudInitUserData = "vm_cloudinit_userdata"
    public static let cloudInitHostname = "vm_cloudinit_hostname"
    public static let cloudInitNetworkConfig = "vm_cloudinit_networkconfig"
    public static let cloudInitInstanceID = "vm_cloudinit_instanceid"
    public static let uuid = "vm_uuid"
    public static let installKickstart = "vm_install_kickstart"
    public static let installPreseed = "vm_install_preseed"

    /// The settings whose value turns `vm_cloudinit_enable=auto` on.
    public static let cloudInitInputs = [cloudInitUser, cloudInitSSHKey, cloudInitUserData, cloudInitHostname,
                                         cloudInitNetworkConfig, cloudInitInstanceID]
}

/// The SSH public keys a cloud-init seed gives the default user.
public struct CloudInitKeys: Sendable, Equatable {
    /// One OpenSSH public key per entry, as written.
    public var keys: [String]
    /// The `.pub` files they came from (empty for key text in the setting).
    public var files: [String]
    /// The private key beside the first `.pub` file, if there is one (for `ssh.config`).
    public var identityFile: String?
    /// Found in `~/.ssh` because `vm_cloudinit_sshkey` is empty.
    public var discovered: Bool
}

extension VMSettings {
    /// `vm_cloudinit_enable`: `yes`, `no`, or `auto` (empty is auto): on
    /// when any other cloud-init setting has a value or the first disk is a
    /// cloud image (`isCloudImageName`).
    public func cloudInitEnabled() throws -> Bool {
        switch table.value(SettingKey.cloudInitEnable) {
        case "yes": return true
        case "no": return false
        case "auto", "": break
        default: throw invalid(SettingKey.cloudInitEnable, "expected auto, yes or no")
        }
        if SettingKey.cloudInitInputs.contains(where: { !table.value($0).isEmpty }) { return true }
        let disk = hdd(1)
        return disk.enabled && Self.isCloudImageName(disk.backend)
    }

    /// A distribution's cloud image, by its file name: the name contains
    /// `cloud` in any case (debian-12-genericcloud-amd64.qcow2,
    /// jammy-server-cloudimg-amd64.img, Fedora-Cloud-Base-….qcow2,
    /// Rocky-9-GenericCloud-….qcow2). Only the name: nothing is opened.
    public static func isCloudImageName(_ backend: String) -> Bool {
        let base = backend.split(separator: "/").last.map(String.init) ?? backend
        return base.lowercased().contains("cloud")
    }

    /// `vm_cloudinit_user`: the login user; empty is the host user's name
    /// (as Lima does), or `vmtools` when that is root or not a portable name.
    public func cloudInitUser(hostUser: String) throws -> String {
        let v = table.value(SettingKey.cloudInitUser)
        guard !v.isEmpty else { return hostUser != "root" && Self.isUserName(hostUser) ? hostUser : "vmtools" }
        guard Self.isUserName(v) else {
            throw invalid(SettingKey.cloudInitUser, "expected a user name: a lower-case letter or _, then lower-case letters, digits, _ or -, at most 32")
        }
        return v
    }

    /// useradd's portable names: a lower-case letter or _, then letters, digits, _ and -.
    static func isUserName(_ user: String) -> Bool {
        !user.isEmpty && user.count <= 32 && user.unicodeScalars.enumerated().allSatisfy { i, s in
            ("a"..."z").contains(s) || s == "_" || (i > 0 && (("0"..."9").contains(s) || s == "-"))
        }
    }

    /// `vm_cloudinit_hostname`, else `vm_name` made a host name: lower case,
    /// anything but letters and digits becomes `-`, at most 63 characters.
    public func cloudInitHostname() throws -> String {
        let v = table.value(SettingKey.cloudInitHostname)
        guard !v.isEmpty else { return Self.hostName(from: name) }
        guard v == Self.hostName(from: v), v.count <= 63 else {
            throw invalid(SettingKey.cloudInitHostname, "expected a host name: lower-case letters, digits and inner hyphens, at most 63")
        }
        return v
    }

    /// A valid host name (RFC 1123 label) made from any text; `vm` if nothing is left.
    public static func hostName(from text: String) -> String {
        var out = ""
        for s in text.lowercased().unicodeScalars {
            let keep = ("a"..."z").contains(s) || ("0"..."9").contains(s)
            if keep { out.unicodeScalars.append(s) } else if !out.isEmpty, !out.hasSuffix("-") { out += "-" }
        }
        out = String(out.prefix(63))
        while out.hasSuffix("-") { out.removeLast() }
        return out.isEmpty ? "vm" : out
    }

    /// `vm_cloudinit_instanceid` (written by vmtools); empty until the first start.
    public var cloudInitInstanceID: String { table.value(SettingKey.cloudInitInstanceID) }

    /// `vm_uuid` (QEMU `-uuid`, the SMBIOS system UUID); nil when empty.
    public func uuid() throws -> String? {
        let v = table.value(SettingKey.uuid)
        guard !v.isEmpty else { return nil }
        guard Self.isUUID(v) else { throw invalid(SettingKey.uuid, "expected a UUID such as 0f8fad5b-d9cb-469f-a165-70867728950e") }
        return v
    }

    static func isUUID(_ v: String) -> Bool {
        let groups = v.split(separator: "-", omittingEmptySubsequences: false)
        return groups.map(\.count) == [8, 4, 4, 4, 12] && groups.allSatisfy { $0.allSatisfy { $0.isASCII && $0.isHexDigit } }
    }

    /// A file setting: nil when empty; `~/` is the user's home, a relative
    /// path is the VM home's; it must be a readable file.
    public func readableFile(_ name: String, home: String?, environment: [String: String]) throws -> String? {
        var v = table.value(name)
        guard !v.isEmpty else { return nil }
        if v.hasPrefix("~/"), let h = environment["HOME"] { v = h + v.dropFirst(1) }
        if !v.hasPrefix("/"), let home { v = home + "/" + v }
        guard FileSystem.isRegularFile(v), FileSystem.isReadable(v) else { throw invalid(name, "no readable file at \(v)") }
        return v
    }

    /// `vm_cloudinit_sshkey`: key text (`ssh-ed25519 AAAA…`) or `.pub`
    /// file paths separated by spaces; empty: the first of
    /// `~/.ssh/id_ed25519.pub`, `id_ecdsa.pub`, `id_rsa.pub`. nil when none is found.
    public func cloudInitKeys(home: String?, environment: [String: String]) throws -> CloudInitKeys? {
        let v = table.value(SettingKey.cloudInitSSHKey).trimmingTrailingWhitespace()
        if v.isEmpty {
            guard let dir = environment["HOME"].map({ $0 + "/.ssh" }) else { return nil }
            for base in ["id_ed25519", "id_ecdsa", "id_rsa"] {
                let pub = dir + "/" + base + ".pub"
                guard FileSystem.isRegularFile(pub) else { continue }
                var k = try keys(inFile: pub, setting: SettingKey.cloudInitSSHKey)
                k.discovered = true
                return k
            }
            return nil
        }
        if Self.looksLikePublicKey(v) { return CloudInitKeys(keys: [v], files: [], identityFile: nil, discovered: false) }
        var all = CloudInitKeys(keys: [], files: [], identityFile: nil, discovered: false)
        for word in v.split(separator: " ") {
            var path = String(word)
            if path.hasPrefix("~/"), let h = environment["HOME"] { path = h + path.dropFirst(1) }
            if !path.hasPrefix("/"), let home { path = home + "/" + path }
            guard FileSystem.isRegularFile(path), FileSystem.isReadable(path) else {
                throw invalid(SettingKey.cloudInitSSHKey, "no readable public key file at \(path) (give key text such as 'ssh-ed25519 AAAA…' or .pub files)")
            }
            let k = try keys(inFile: path, setting: SettingKey.cloudInitSSHKey)
            all.keys += k.keys
            all.files += k.files
            all.identityFile = all.identityFile ?? k.identityFile
        }
        return all
    }

    private func keys(inFile path: String, setting: String) throws -> CloudInitKeys {
        guard let text = try FileSystem.readTextIfExists(path, limit: 1 << 20) else {
            throw invalid(setting, "no readable public key file at \(path)")
        }
        let lines = text.split(separator: "\n").map { String($0).trimmingTrailingWhitespace() }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        guard !lines.isEmpty, lines.allSatisfy(Self.looksLikePublicKey) else {
            throw invalid(setting, "\(path) is not an OpenSSH public key (expected lines such as 'ssh-ed25519 AAAA… comment')")
        }
        let priv = path.hasSuffix(".pub") ? String(path.dropLast(4)) : nil
        return CloudInitKeys(keys: lines, files: [path], identityFile: priv.flatMap { FileSystem.isRegularFile($0) ? $0 : nil }, discovered: false)
    }

    /// `TYPE BASE64 [comment]` with an OpenSSH key type; options before the type are refused.
    public static func looksLikePublicKey(_ line: String) -> Bool {
        let words = line.split(separator: " ", maxSplits: 2)
        guard words.count >= 2, !line.contains("\n") else { return false }
        let type = words[0]
        let types = ["ssh-ed25519", "ssh-rsa", "ssh-dss", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com"]
        guard types.contains(String(type)) || type.hasPrefix("ecdsa-sha2-") else { return false }
        return words[1].hasPrefix("AAAA") && words[1].allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "+/=".contains($0)) }
    }
}

extension VMSettings {
    /// A new `vm_cloudinit_instanceid`: `iid-` and 16 random hex digits.
    public static func newInstanceID() throws -> String {
        "iid-" + (try SystemRandom.bytes(8)).map(hexByte).joined()
    }

    /// A new `vm_uuid`: a random (version 4) UUID.
    public static func newUUID() throws -> String {
        var b = try SystemRandom.bytes(16)
        b[6] = (b[6] & 0x0F) | 0x40
        b[8] = (b[8] & 0x3F) | 0x80
        let h = b.map(hexByte)
        return [h[0..<4], h[4..<6], h[6..<8], h[8..<10], h[10..<16]].map { $0.joined() }.joined(separator: "-")
    }
}
