#if canImport(Glibc)
import Glibc
#endif

/// `ssh.config` and `known_hosts` in a VM home (vmup(1), "Files in the VM
/// home"): written at each start of a VM with an SSH forward, so that
/// `ssh -F HOME/ssh.config NAME` reaches it on the port QEMU really took.
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

    /// The line `vminfo` prints.
    public static func command(home: String, name: String) -> String {
        "ssh -F \(shellQuote(home.appendingPathComponent(fileName))) \(shellQuote(name))"
    }

    /// A value as ssh_config(5) reads it: double quotes around blanks; nil
    /// for what it cannot hold (a quote, a control character).
    static func quoted(_ s: String) -> String? {
        guard !s.isEmpty, !s.unicodeScalars.contains(where: { $0 == "\"" || $0.value < 0x20 || $0.value == 0x7F }) else { return nil }
        return s.contains(" ") || s.contains("\t") || s.contains("#") ? "\"\(s)\"" : s
    }

    /// The file's text; nil when the name or a path cannot be written there.
    public var text: String? {
        guard let host = Self.quoted(name), !name.contains(where: { "*?!,".contains($0) }),
              let known = Self.quoted(knownHosts) else { return nil }
        var lines = [Self.instancePrefix + (instanceID.isEmpty ? "-" : instanceID.filter { $0.isASCII && !$0.isWhitespace }),
                     "Host \(host)", "  HostName \(address)", "  Port \(port)"]
        if !user.isEmpty, let u = Self.quoted(user) { lines.append("  User \(u)") }
        if let key = identityFile, let k = Self.quoted(key) { lines.append("  IdentityFile \(k)") }
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
            throw VMToolsError(.failure, path, "not written: the VM's name or home cannot be written in an ssh_config file")
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
