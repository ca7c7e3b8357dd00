import Foundation
import Testing
@testable import VMToolsKit

/// Settings files are data. Whatever they hold, loading them runs nothing:
/// the result is a clear `file:line` error or a literal value.
@Suite struct HostileCorpusTests {
    /// Payloads that would create `marker` if anything evaluated them as shell.
    static func payloads(_ marker: String) -> [String] {
        [
            "$(touch \(marker))", "`touch \(marker)`", "x; touch \(marker)", "x && touch \(marker)",
            "x | touch \(marker)", "'; touch \(marker); '", "\"$(touch \(marker))\"", "${IFS}touch${IFS}\(marker)",
            "x\ntouch \(marker)", "$(printf x > \(marker))", "'$(touch \(marker))'", "\\'$(touch \(marker))\\'",
            "'\\''$(touch \(marker))'\\''", "x > \(marker)",
        ]
    }

    @Test func vmSettingsNeverRunAnything() throws {
        let s = Scratch()
        let marker = s.url("pwned")
        var literal = 0, refused = 0
        for (k, payload) in Self.payloads(marker).enumerated() {
            let home = "vm\(k)"
            try s.write("\(home)/vm.settings", "vm_name=\(payload)\nvm_ram_size=1G\n")
            do {
                let global = try resolver(s).loadGlobal()
                let vm = try resolver(s).loadVM(home: s.url(home), global: global)
                // Accepted only when the payload is literal text once decoded.
                #expect(vm.name.contains("touch") || vm.name.contains("printf"))
                literal += 1
            } catch let e as VMToolsError {
                #expect(e.subject?.hasPrefix(s.url("\(home)/vm.settings") + ":") == true, "\(e)")
                #expect(!e.description.contains("\n"))
                refused += 1
            }
            #expect(!FileManager.default.fileExists(atPath: marker), "payload \(payload) ran")
        }
        #expect(literal > 0 && refused > 0)
    }

    @Test func configurationAndTemplatesNeverRunAnything() throws {
        let s = Scratch()
        let marker = s.url("pwned")
        for payload in Self.payloads(marker) {
            for unquoted in [true, false] {
                let value = unquoted ? payload : "\"\(payload)\""
                try s.write("etc/vmtools.conf", "vm_custom_x=\(value)\n")
                _ = try? resolver(s).loadGlobal()
                try s.write("etc/vmtools.conf", "")
                try s.write("etc/templates/evil.tpl", "vm_custom_x=\(value)\n")
                try s.write("vm/vm.settings", "template evil\n")
                if let g = try? resolver(s).loadGlobal() { _ = try? resolver(s).loadVM(home: s.url("vm"), global: g) }
                #expect(!FileManager.default.fileExists(atPath: marker), "payload \(value) ran")
            }
        }
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
