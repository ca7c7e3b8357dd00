#if canImport(Glibc)
import Glibc
#endif

/// `ssh.config` and `known_hosts` in a VM home (vmup(1), "Files in the VM
/// home"): written at each start of a VM with an SSH forward, so that
/// `ssh -F HOME/ssh.config -- ALIAS` reaches it on the port QEMU really took.
public struct SSHConfig: Equatable, Sendable {
    public static let fileName = "ssh.config"
    public static let knownHostsName = "known_hosts"
    /// The first line records the instance, so the next start sees a new one.
    static let instancePrefix = "# vmtools: instance "

    public var name: String
    public var home: String
    public var address: String
    public var port: Int
    public var user: String
    public var identityFile: String?
    public var instanceID: String

    public init(name: String, home: String, address: String, port: Int, user: String, identityFile: String?, instanceID: String) {
        self.name = name
        self.home = home
        self.address = address
        self.port = port
        self.user = user
        self.identityFile = identityFile
        self.instanceID = instanceID
    }

    public var path: String { home.appendingPathComponent(Self.fileName) }
    public var knownHosts: String { home.appendingPathComponent(Self.knownHostsName) }

    /// The line `vmup` and `vminfo` print: `--` ends ssh's options, so no
    /// alias could be read as one.
    public static func command(home: String, name: String) -> String {
        "ssh -F \(shellQuote(home.appendingPathComponent(fileName))) -- \(alias(name))"
    }

    /// The `Host` alias for a VM name (vmup(1), Files in the VM home): the name itself when
    /// it is already lower-case letters, digits, `.`, `_` and `-` (not
    /// starting with `-` or `.`, at most 64); otherwise those characters
    /// kept (lower-cased), every other run of characters made one `-`, and
    /// `-` plus eight hex digits of the name's FNV-1a hash added, so two
    /// names never share an alias by accident. Never an ssh option, pattern
    /// (`*?!,`), token (`%`) or quote.
    public static func alias(_ name: String) -> String {
        func allowed(_ b: UInt8) -> Bool {
            (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x2E || b == 0x5F || b == 0x2D
        }
        if let first = name.utf8.first, first != UInt8(ascii: "-"), first != UInt8(ascii: "."), name.utf8.count <= 64,
           name.utf8.allSatisfy(allowed) {
            return name
        }
        var mapped: [UInt8] = []
        for b in name.lowercased().utf8 {
            if allowed(b) {
                mapped.append(b)
            } else if mapped.last != UInt8(ascii: "-") {
                mapped.append(UInt8(ascii: "-"))
            }
        }
        while let f = mapped.first, f == UInt8(ascii: "-") || f == UInt8(ascii: ".") { mapped.removeFirst() }
        while mapped.last == UInt8(ascii: "-") { mapped.removeLast() }
        var h: UInt32 = 0x811C_9DC5
        for b in name.utf8 {
            h ^= UInt32(b)
            h = h &* 0x0100_0193
        }
        let hex = String(h, radix: 16)
        let stem = String(decoding: mapped.prefix(64), as: UTF8.self)
        return (stem.isEmpty ? "vm" : stem) + "-" + String(repeating: "0", count: 8 - hex.count) + hex
    }

    /// A value as ssh_config(5) reads it: as it is when plain, else in double quotes, `\` and `"`
    /// escaped, `%` doubled where ssh expands tokens (`percent`); nil for
    /// what no line can hold: a control character, or `${`, which ssh
    /// always expands as an environment variable.
    static func quoted(_ s: String, percent: Bool) -> String? {
        guard !s.isEmpty, !s.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }),
              !s.contains("${") else { return nil }
        let plain = s.unicodeScalars.allSatisfy { c in
            c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || "._/-+:@,=".unicodeScalars.contains(c))
        }
        if plain { return s }
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "%" where percent: out += "%%"
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }

    /// A login name ssh takes as it is; anything else is left out (ssh then
    /// uses the local user).
    static func isLoginName(_ s: String) -> Bool {
        guard let first = s.utf8.first, first != UInt8(ascii: "-"), s.utf8.count <= 32 else { return false }
        return s.utf8.allSatisfy { b in
            (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39) || b == 0x2E || b == 0x5F || b == 0x2D
        }
    }

    /// The file's text; nil when a path cannot be written there (a control
    /// character or `${` in it): one bad file would stop ssh for every host
    /// of a config that includes it.
    public var text: String? {
        guard let known = Self.quoted(knownHosts, percent: true), let hostName = Self.quoted(address, percent: true) else { return nil }
        var lines = [Self.instancePrefix + (instanceID.isEmpty ? "-" : String(String.UnicodeScalarView(instanceID.unicodeScalars.filter { $0.value > 0x20 && $0.value < 0x7F }))),
                     "Host \(Self.alias(name))", "  HostName \(hostName)", "  Port \(port)"]
        if Self.isLoginName(user) { lines.append("  User \(user)") }
        if let key = identityFile {
            guard let k = Self.quoted(key, percent: true) else { return nil }
            lines.append("  IdentityFile \(k)")
        }
        lines += ["  UserKnownHostsFile \(known)", "  StrictHostKeyChecking accept-new"]
        return lines.joined(separator: "\n") + "\n"
    }

    /// The instance an existing ssh.config was written for.
    static func recordedInstance(_ text: String) -> String? {
        guard let first = text.split(separator: "\n").first, first.hasPrefix(instancePrefix) else { return nil }
        return String(first.dropFirst(instancePrefix.count))
    }

    /// Writes ssh.config (0600, atomically) and empties `known_hosts` when
    /// the guest is a new instance (new host keys). The caller holds the VM's lock.
    public func write() throws {
        guard let text else {
            throw VMToolsError(.failure, path, "not written: the VM's home or key path holds a control character or ${, which an ssh_config file cannot hold")
        }
        let old = (try? FileSystem.readTextIfExists(path)) ?? nil
        let recorded = old.flatMap { Self.recordedInstance($0) }
        if recorded != Self.recordedInstance(text) || !FileSystem.exists(knownHosts) {
            try FileSystem.writeAtomically([], to: knownHosts, mode: 0o600)
            chmod(knownHosts, 0o600)
        }
        try FileSystem.writeAtomically(Array(text.utf8), to: path, mode: 0o600)
        chmod(path, 0o600)
    }
}
