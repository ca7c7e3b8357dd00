import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// Settings files are data. Whatever they hold, loading them runs nothing:
/// the result is a clear `file:line` error or a literal value.
@Suite struct HostileCorpusTests {
    /// What loading a value does: keeps it, decoded, or refuses its file at
    /// `line` with exactly `message`.
    enum Outcome: Equatable, CustomStringConvertible {
        case accepted(String)
        case refused(line: Int, String)

        var description: String {
            switch self {
            case .accepted(let value): "accepted \(String(reflecting: value))"
            case .refused(let line, let message): "refused at line \(line): \(message)"
            }
        }
    }

    /// A payload, and what becomes of it as `vm_name=` in a vm.settings, and
    /// as `vm_custom_x=` in vmtools.conf or a template, bare and in double quotes.
    struct Case {
        var payload: String
        var vmSettings: Outcome
        var bare: Outcome
        var doubleQuoted: Outcome
    }

    /// Payloads that would create `marker` if anything evaluated them as shell.
    static func payloads(_ marker: String) -> [Case] {
        // vm.settings: shell characters outside single quotes are refused.
        func unquoted(_ c: Character) -> Outcome {
            .refused(line: 1, "vm_name: \(c == " " ? "space" : "'\(c)'") must be inside single quotes (for example vm_name='a\(c)b'); values are data, never shell code")
        }
        // vmtools.conf and templates: shell syntax is refused, saying why.
        func shell(_ why: String, line: Int = 1) -> Outcome { .refused(line: line, why + "; vmtools reads settings files as data") }
        let substitution = shell("command substitution $(…) needs a shell")
        let touch = shell("'touch' is a shell command, not a NAME=VALUE assignment")
        func syntax(_ c: String) -> Outcome { shell("'\(c)' is shell syntax (pipes, redirections, background jobs)") }
        let m = marker
        return [
            Case(payload: "$(touch \(m))", vmSettings: unquoted("$"), bare: substitution, doubleQuoted: substitution),
            Case(payload: "`touch \(m)`", vmSettings: unquoted("`"),
                 bare: shell("command substitution (`…`) needs a shell"), doubleQuoted: shell("command substitution (`…`) needs a shell")),
            Case(payload: "x; touch \(m)", vmSettings: unquoted(";"), bare: touch, doubleQuoted: .accepted("x; touch \(m)")),
            Case(payload: "x && touch \(m)", vmSettings: unquoted(" "), bare: syntax("&"), doubleQuoted: .accepted("x && touch \(m)")),
            Case(payload: "x | touch \(m)", vmSettings: unquoted(" "), bare: syntax("|"), doubleQuoted: .accepted("x | touch \(m)")),
            Case(payload: "'; touch \(m); '", vmSettings: .accepted("; touch \(m); "), bare: .accepted("; touch \(m); "),
                 doubleQuoted: .accepted("'; touch \(m); '")),
            Case(payload: "\"$(touch \(m))\"", vmSettings: unquoted("\""), bare: substitution, doubleQuoted: substitution),
            Case(payload: "${IFS}touch${IFS}\(m)", vmSettings: unquoted("$"),
                 bare: shell("'$IFS': environment variables are not expanded (only $cfg_…/$vm_… settings)"),
                 doubleQuoted: shell("'$IFS': environment variables are not expanded (only $cfg_…/$vm_… settings)")),
            Case(payload: "x\ntouch \(m)", vmSettings: .refused(line: 2, "invalid line 'touch \(m)': expected vm_NAME=VALUE, 'template NAME…' or 'parent PATH'"),
                 bare: shell("'touch' is a shell command, not a NAME=VALUE assignment", line: 2),
                 doubleQuoted: .refused(line: 1, "vm_custom_x: newline characters are not allowed in values")),
            Case(payload: "$(printf x > \(m))", vmSettings: unquoted("$"), bare: substitution, doubleQuoted: substitution),
            Case(payload: "'$(touch \(m))'", vmSettings: .accepted("$(touch \(m))"), bare: .accepted("$(touch \(m))"), doubleQuoted: substitution),
            Case(payload: "\\'$(touch \(m))\\'", vmSettings: unquoted("$"), bare: substitution, doubleQuoted: substitution),
            Case(payload: "'\\''$(touch \(m))'\\''", vmSettings: .refused(line: 1, "vm_name: unterminated single quote"),
                 bare: .refused(line: 1, "unterminated single quote"), doubleQuoted: substitution),
            Case(payload: "x > \(m)", vmSettings: unquoted(" "), bare: syntax(">"), doubleQuoted: .accepted("x > \(m)")),
        ]
    }

    @Test func vmSettingsNeverRunAnything() throws {
        let s = Scratch()
        let marker = s.url("pwned")
        for (k, c) in Self.payloads(marker).enumerated() {
            let home = "vm\(k)"
            let file = s.url("\(home)/vm.settings")
            try s.write("\(home)/vm.settings", "vm_name=\(c.payload)\nvm_ram_size=1G\n")
            let outcome: Outcome
            do {
                let global = try resolver(s).loadGlobal()
                outcome = .accepted(try resolver(s).loadVM(home: s.url(home), global: global).name)
            } catch let e as VMToolsError {
                #expect(!e.description.contains("\n"), "\(e)")
                outcome = e.subject.flatMap { Self.line(of: $0, in: file) }.map { .refused(line: $0, e.message) } ?? .accepted("error about \(e)")
            }
            #expect(outcome == c.vmSettings, "payload \(String(reflecting: c.payload))")
            #expect(!FileManager.default.fileExists(atPath: marker), "payload \(c.payload) ran")
        }
    }

    @Test func configurationAndTemplatesNeverRunAnything() throws {
        let s = Scratch()
        let marker = s.url("pwned")
        let conf = s.url("etc/vmtools.conf"), template = s.url("etc/templates/evil.tpl")
        // Errors in vmtools.conf name the layer the file belongs to.
        let layer = " (system layer: \(s.url("etc")), given)"
        for c in Self.payloads(marker) {
            for (value, expected) in [(c.payload, c.bare), ("\"\(c.payload)\"", c.doubleQuoted)] {
                try s.write("etc/vmtools.conf", "vm_custom_x=\(value)\n")
                let fromConf: Outcome
                do {
                    fromConf = .accepted(try resolver(s).loadGlobal().settings.value("vm_custom_x"))
                } catch let e as VMToolsError {
                    let message = e.message.hasSuffix(layer) ? String(e.message.dropLast(layer.count)) : "no layer: \(e.message)"
                    fromConf = e.subject.flatMap { Self.line(of: $0, in: conf) }.map { .refused(line: $0, message) } ?? .accepted("error about \(e)")
                }
                #expect(fromConf == expected, "vmtools.conf: vm_custom_x=\(value)")
                try s.write("etc/vmtools.conf", "")
                try s.write("etc/templates/evil.tpl", "vm_custom_x=\(value)\n")
                try s.write("vm/vm.settings", "template evil\n")
                let fromTemplate: Outcome
                do {
                    let g = try resolver(s).loadGlobal()
                    fromTemplate = .accepted(try resolver(s).loadVM(home: s.url("vm"), global: g).settings.value("vm_custom_x"))
                } catch let e as VMToolsError {
                    fromTemplate = e.subject.flatMap { Self.line(of: $0, in: template) }.map { .refused(line: $0, e.message) } ?? .accepted("error about \(e)")
                }
                #expect(fromTemplate == expected, "evil.tpl: vm_custom_x=\(value)")
                #expect(!FileManager.default.fileExists(atPath: marker), "payload \(value) ran")
            }
        }
    }

    /// The line of `file` an error subject `file:LINE` names, nil for another subject.
    static func line(of subject: String, in file: String) -> Int? {
        subject.hasPrefix(file + ":") ? Int(subject.dropFirst(file.count + 1)) : nil
    }

    @Test func binaryGarbageIsRefusedWithTheLine() throws {
        let s = Scratch()
        try s.writeBytes("nul/vm.settings", Array("vm_name=a\nvm_x=b\0c\n".utf8))
        try s.writeBytes("utf/vm.settings", Array("vm_name=a\nvm_b=x\n".utf8) + [0x76, 0x6d, 0x5f, 0x78, 0x3d, 0x27, 0xff, 0xfe, 0x27, 0x0a])
        try s.writeBytes("overlong/vm.settings", Array("vm_x='".utf8) + [0xC0, 0xAF] + Array("'\n".utf8))
        try s.writeBytes("surrogate/vm.settings", Array("vm_x='".utf8) + [0xED, 0xA0, 0x80] + Array("'\n".utf8))
        let g = try resolver(s).loadGlobal()
        for (home, line, word) in [("nul", 2, "NUL"), ("utf", 3, "UTF-8"), ("overlong", 1, "UTF-8"), ("surrogate", 1, "UTF-8")] {
            let e = expectError { _ = try resolver(s).loadVM(home: s.url(home), global: g) }
            #expect(e?.subject == s.url("\(home)/vm.settings") + ":\(line)")
            #expect(e?.message.contains(word) == true)
        }
    }

    @Test func veryLongLinesAreReadLiterally() throws {
        let s = Scratch()
        let long = String(repeating: "a", count: 1 << 20)
        try s.write("vm/vm.settings", "vm_name=\(long)\nvm_custom='\(String(repeating: "x y ", count: 50_000))'\n")
        let g = try resolver(s).loadGlobal()
        let vm = try resolver(s).loadVM(home: s.url("vm"), global: g)
        #expect(vm.name.count == 1 << 20)
        #expect(vm.settings.value("vm_custom").count == 200_000)
    }

    @Test func hugeFilesAreRefused() throws {
        let s = Scratch()
        try s.write("vm/vm.settings", "vm_name='" + String(repeating: "a", count: 5 << 20) + "'\n")
        let g = try resolver(s).loadGlobal()
        let e = expectError { _ = try resolver(s).loadVM(home: s.url("vm"), global: g) }
        #expect(e?.message.contains("too large") == true)
    }

    @Test func commandLineValuesWithNewlinesAreRefused() {
        var cli = CommandLineSettings()
        let e = expectError { try cli.parseOverride("vm_name=a\nb") }
        #expect(e?.code == .usage)
    }
}
