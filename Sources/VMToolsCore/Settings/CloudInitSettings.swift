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
        if Self.startsLikePublicKey(v) {
            let keys = try Self.publicKeys(v).map { line in
                try line.get(orThrow: { why in invalid(SettingKey.cloudInitSSHKey, why) })
            }
            return CloudInitKeys(keys: keys, files: [], identityFile: nil, discovered: false)
        }
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
        let lines = try Self.publicKeys(text).map { line in
            try line.get(orThrow: { why in invalid(setting, "\(path):\(line.number): \(why)") })
        }
        guard !lines.isEmpty else {
            throw invalid(setting, "\(path) is not an OpenSSH public key (expected lines such as 'ssh-ed25519 AAAA… comment')")
        }
        let priv = path.hasSuffix(".pub") ? String(path.dropLast(4)) : nil
        return CloudInitKeys(keys: lines, files: [path], identityFile: priv.flatMap { FileSystem.isRegularFile($0) ? $0 : nil }, discovered: false)
    }

    /// One line of a public key file or setting: the key, or why it is none.
    public struct KeyLine: Sendable {
        public var number: Int
        public var result: Result<String, KeyError>
        public struct KeyError: Error, Sendable { public var why: String }

        func get(orThrow error: (String) -> VMToolsError) throws -> String {
            switch result {
            case .success(let key): return key
            case .failure(let e): throw error(e.why)
            }
        }
    }

    /// The OpenSSH key types an authorized_keys line may start with.
    static let keyTypes: Set<String> = ["ssh-ed25519", "ssh-rsa", "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                                        "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com"]

    /// Text whose first word is a key type: key text rather than file names.
    static func startsLikePublicKey(_ v: String) -> Bool {
        keyTypes.contains(String(v.prefix { $0 != " " && $0 != "\t" && $0 != "\n" && $0 != "\r" }))
    }

    /// The keys of `text`, one per line whatever the line ends (LF, CRLF,
    /// CR); blank lines and `#` comments skipped. A key line is `TYPE BLOB
    /// [COMMENT]`: a known type, a base64 blob whose own type field says
    /// the same, a comment without control characters. Options before the
    /// type (`command="…"`, `from=`) are refused: a seed gives plain keys.
    public static func publicKeys(_ text: String) -> [KeyLine] {
        var lines: [KeyLine] = []
        var number = 0
        var current = String.UnicodeScalarView()
        var scalars = text.unicodeScalars.makeIterator()
        var pendingCR = false
        func flush() {
            number += 1
            let line = String(current).trimmingTrailingWhitespace()
            current = String.UnicodeScalarView()
            let body = line.drop { $0 == " " || $0 == "\t" }
            if body.isEmpty || body.hasPrefix("#") { return }
            lines.append(KeyLine(number: number, result: publicKey(String(body)).map { .failure(.init(why: $0)) } ?? .success(String(body))))
        }
        while let c = scalars.next() {
            if pendingCR {
                pendingCR = false
                if c == "\n" { continue }
            }
            switch c {
            case "\n": flush()
            case "\r": flush(); pendingCR = true
            default: current.append(c)
            }
        }
        if !current.isEmpty { flush() }
        return lines
    }

    /// Why `line` is not a public key line, or nil when it is one.
    static func publicKey(_ line: String) -> String? {
        let words = line.split(maxSplits: 2, omittingEmptySubsequences: true) { $0 == " " || $0 == "\t" }.map(String.init)
        guard let type = words.first, keyTypes.contains(type) else {
            return "not an OpenSSH public key: a line starts with its type (ssh-ed25519, ssh-rsa, ecdsa-sha2-…); options such as command= are not taken"
        }
        guard words.count >= 2, let blob = base64Decode(words[1]), blob.count >= 4 else {
            return "not an OpenSSH public key: the key after \(type) is not base64"
        }
        let length = Int(blob[0]) << 24 | Int(blob[1]) << 16 | Int(blob[2]) << 8 | Int(blob[3])
        guard length <= blob.count - 4, Array(blob[4..<(4 + length)]) == Array(type.utf8) else {
            return "not an OpenSSH public key: the key's own type is not \(type)"
        }
        if words.count == 3, words[2].unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\t" || (0x7F...0x9F).contains($0.value) }) {
            return "the comment after the key holds a control character"
        }
        return nil
    }

    /// Standard base64 with padding, as OpenSSH writes keys; nil for anything else.
    static func base64Decode(_ s: String) -> [UInt8]? {
        let bytes = Array(s.utf8)
        guard !bytes.isEmpty, bytes.count % 4 == 0 else { return nil }
        func value(_ b: UInt8) -> UInt8? {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): return b - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): return b - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0") + 52
            case UInt8(ascii: "+"): return 62
            case UInt8(ascii: "/"): return 63
            default: return nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count / 4 * 3)
        for start in stride(from: 0, to: bytes.count, by: 4) {
            let group = bytes[start..<(start + 4)]
            let pad = group.reversed().prefix { $0 == UInt8(ascii: "=") }.count
            guard pad <= 2, pad == 0 || start + 4 == bytes.count else { return nil }
            var n: UInt32 = 0
            for (k, b) in group.enumerated() {
                let v: UInt8
                if k >= 4 - pad { v = 0 } else if let x = value(b) { v = x } else { return nil }
                n = n << 6 | UInt32(v)
            }
            out.append(UInt8(n >> 16 & 0xFF))
            if pad < 2 { out.append(UInt8(n >> 8 & 0xFF)) }
            if pad < 1 { out.append(UInt8(n & 0xFF)) }
        }
        return out
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
