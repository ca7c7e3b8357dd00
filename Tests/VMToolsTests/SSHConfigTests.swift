import Foundation
import Testing
@testable import VMToolsCore

/// `ssh.config` and the printed `ssh` line stay data whatever the VM's name
/// and home (issue 22): read back by the real OpenSSH client (`ssh -G`),
/// each hostile file gives exactly its own host, port and files, and an
/// `Include` of all of them still resolves a good host.
@Suite struct SSHConfigTests {
    static let names = [
        "-oProxyCommand=touch /tmp/pwned", "-", "--", "a'b", "it's mine", "50%", "%h%p", "my vm", "back\\slash", "$HOME", "${HOME}",
        "\"q\"", "#comment", "*", "!neg", "a,b", "a?b", "Web", "ÜNÏ", "日本", ".hidden", "tab\there", "new\nline", "", "ok-name.1_x",
        String(repeating: "x", count: 200), "Host *", "web\u{9B}",
    ]
    /// Home directories as ssh_config(5) must read them back: blanks, quotes,
    /// backslashes, tokens, comments, dollars.
    static let homes = ["my vm", "it's", "q\"uote", "back\\slash", "50%d", "%%", "#hash", "$HOME", "a b  c", "ünï", "plain"]

    @Test func aliasesAreSafeStableAndDistinct() {
        var seen: [String: String] = [:]
        for name in Self.names {
            let a = SSHConfig.alias(name)
            #expect(!a.isEmpty && !a.hasPrefix("-") && !a.hasPrefix("."), "\(name) → \(a)")
            #expect(a.utf8.allSatisfy { b in (0x61...0x7A).contains(b) || (0x30...0x39).contains(b) || b == 0x2E || b == 0x5F || b == 0x2D },
                    "\(name) → \(a)")
            #expect(SSHConfig.alias(name) == a)
            if let other = seen[a] { Issue.record("\(name) and \(other) share \(a)") }
            seen[a] = name
        }
        #expect(SSHConfig.alias("web") == "web" && SSHConfig.alias("ok-name.1_x") == "ok-name.1_x")
        #expect(SSHConfig.alias("My VM").hasPrefix("my-vm-") && SSHConfig.alias("My VM").count == "my-vm-".count + 8)
        #expect(SSHConfig.command(home: "/vms/a b", name: "-oProxyCommand=x") == "ssh -F '/vms/a b/ssh.config' -- \(SSHConfig.alias("-oProxyCommand=x"))")
    }

    /// `ssh -G`'s view of one host of `config`.
    static func resolve(_ ssh: String, config: String, alias: String) throws -> [String: String] {
        let r = try Subprocess(ssh, ["-G", "-F", config, "--", alias]).run()
        #expect(r.status == 0, "\(alias): \(r.stderrText)")
        var out: [String: String] = [:]
        for line in r.stdoutText.split(separator: "\n") {
            guard let sp = line.firstIndex(of: " ") else { continue }
            let key = String(line[..<sp])
            if out[key] == nil { out[key] = String(line[line.index(after: sp)...]) }
        }
        return out
    }

    @Test(.requires("ssh")) func sshReadsBackEveryHostileNameAndHome() throws {
        guard let ssh = requireTool("ssh") else { return }
        let s = Scratch()
        var written: [(alias: String, config: SSHConfig)] = []
        var port = 20000
        for (i, home) in Self.homes.enumerated() {
            for name in Self.names where !(i > 0 && name.count > 20) {
                port += 1
                let dir = "\(home)/\(port)"
                try s.mkdir(dir)
                let key = s.url(dir) + "/id %k ${nothing}"
                let config = SSHConfig(name: name, home: s.url(dir), address: "127.0.0.1", port: port, user: "ann",
                                       identityFile: port % 2 == 0 ? s.url(dir) + "/id_ed25519" : nil, instanceID: "iid-\u{9B}\n\(name)")
                try config.write()
                written.append((SSHConfig.alias(name), config))
                // A key path ssh cannot hold leaves no file behind, and says why.
                let bad = SSHConfig(name: name, home: s.url(dir), address: "127.0.0.1", port: port, user: "", identityFile: key, instanceID: "")
                #expect(bad.text == nil)
            }
        }
        for (alias, config) in written {
            let g = try Self.resolve(ssh, config: config.path, alias: alias)
            #expect(g["hostname"] == "127.0.0.1", "\(config.name)")
            #expect(g["port"] == String(config.port), "\(config.name)")
            #expect(g["user"] == "ann", "\(config.name)")
            // ssh -G expands the known-hosts file's tokens but lists
            // identity files as written, before their `%` tokens are expanded.
            #expect(g["userknownhostsfile"] == config.knownHosts, "\(config.name): \(g["userknownhostsfile"] ?? "-")")
            if let key = config.identityFile {
                #expect(g["identityfile"] == key.replacingAll("%", with: "%%"), "\(config.name): \(g["identityfile"] ?? "-")")
            }
            #expect(g["proxycommand"] == nil, "\(config.name)")
        }
        // The README's `Include ~/vms/*/ssh.config`: every file of the
        // corpus plus a good one, and ssh still finds each host.
        let good = SSHConfig(name: "good", home: try { try s.mkdir("good"); return s.url("good") }(), address: "127.0.0.1", port: 2222,
                             user: "", identityFile: nil, instanceID: "")
        try good.write()
        let top = try s.write("top.config", (written.map(\.config.path) + [good.path]).map { "Include \"\($0.replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\""))\"\n" }.joined())
        #expect(try Self.resolve(ssh, config: top, alias: "good")["port"] == "2222")
        // A name in several homes: ssh takes the first file's host, as for any Host.
        var first: [String: Int] = [:]
        for w in written where first[w.alias] == nil { first[w.alias] = w.config.port }
        for (alias, port) in first {
            #expect(try Self.resolve(ssh, config: top, alias: alias)["port"] == String(port), "\(alias)")
        }
        #expect(!FileManager.default.fileExists(atPath: "/tmp/pwned"))
    }
}
