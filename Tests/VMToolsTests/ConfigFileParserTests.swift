import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

@Suite struct ConfigFileParserTests {
    func values(_ text: String, kind: ConfigFileParser.Kind = .configuration) throws -> [String: String] {
        let r = try ConfigFileParser.parse(text, path: "c.conf", kind: kind)
        var table = SettingsTable()
        for (n, v) in Defaults.values { table.set(n, v, .builtin) }
        var out: [String: String] = [:]
        for case let .assign(name, parts, _) in r.statements {
            let v = SettingsResolver.expand(parts, table)
            table.set(name, v, .builtin)
            out[name] = v
        }
        return out
    }

    @Test func readsTheQuotingFormsRealFilesUse() throws {
        let v = try values("""
        # comment
        vm_a='single quoted'
        vm_b="double quoted"
        vm_c=10
        cfg_limit_waitlock=10 #seconds
        vm_d="one \\
        	two"
        vm_e=un\\ quoted\\$
        export vm_f='exported'
        readonly vm_g=ro
        vm_h="say \\"hi\\" \\\\ \\$HOME \\`x\\`"
        vm_i='multi
        line' vm_j=x
        vm_k= vm_l=""
        vm_m=a'b'"c"
        vm_n=x; vm_o=y
        export vm_a
        """.replacingAll("vm_i='multi\nline' vm_j=x\n", with: "vm_j=x\n"))
        #expect(v["vm_a"] == "single quoted")
        #expect(v["vm_b"] == "double quoted")
        #expect(v["vm_c"] == "10")
        #expect(v["cfg_limit_waitlock"] == "10")
        #expect(v["vm_d"] == "one \ttwo")
        #expect(v["vm_e"] == "un quoted$")
        #expect(v["vm_f"] == "exported")
        #expect(v["vm_g"] == "ro")
        #expect(v["vm_h"] == "say \"hi\" \\ $HOME `x`")
        #expect(v["vm_j"] == "x")
        #expect(v["vm_k"] == "")
        #expect(v["vm_l"] == "")
        #expect(v["vm_m"] == "abc")
        #expect(v["vm_n"] == "x")
        #expect(v["vm_o"] == "y")
    }

    @Test func expandsSettingsBuiltSoFar() throws {
        let v = try values("""
        vm_qemu_params="$vm_qemu_params -machine q35"
        vm_custom_x=${vm_ram_size}B
        vm_custom_y="[$vm_custom_undefined]"
        """)
        #expect(v["vm_qemu_params"] == "-usbdevice tablet -machine q35")
        #expect(v["vm_custom_x"] == "2GB")
        #expect(v["vm_custom_y"] == "[]")
    }

    @Test func ignoresNamesThatAreNotSettings() throws {
        let r = try ConfigFileParser.parse("IFS='\n'\nLC_ALL=C.UTF-8\nexport LC_ALL\nnoreply='*null*'\nvm_a=1\n", path: "c", kind: .configuration)
        #expect(r.statements == [.assign(name: "vm_a", value: [.literal("1")], line: 6)])
        #expect(r.ignored.map(\.name) == ["IFS", "LC_ALL", "noreply"])
    }

    @Test(arguments: [
        ("vm_a=$(touch /tmp/x)", "command substitution"),
        ("vm_a=`id`", "command substitution"),
        ("vm_a=\"$(id)\"", "command substitution"),
        ("vm_a=$HOME", "environment variables"),
        ("vm_a=\"${HOME}\"", "environment variables"),
        ("vm_a=${vm_b:-x}", "only plain"),
        ("vm_a=$1", "shell parameter"),
        ("echo() { printf x; }", "function definitions"),
        ("f () { :; }", "shell syntax"),
        ("rm -rf /", "shell command"),
        ("vm_a=1 rm -rf /", "shell command"),
        ("if true; then vm_a=1; fi", "shell command"),
        ("vm_a=1 | cat", "shell syntax"),
        ("vm_a=1 && vm_b=2", "shell syntax"),
        ("vm_a=1 > /tmp/x", "shell syntax"),
        ("vm_a=~/x", "'~'"),
        ("vm_a='open", "unterminated single quote"),
        ("vm_a=\"open", "unterminated double quote"),
        ("vm_a='two\nlines'", "newline"),
        ("template macos", "not in vmtools.conf"),
        ("parent /x", "not in vmtools.conf"),
        (". /etc/other.conf", "shell command"),
    ])
    func refusesShellCodeWithFileAndLine(_ text: String, _ reason: String) {
        let e = expectError { _ = try ConfigFileParser.parse("vm_ok=1\n" + text + "\n", path: "/etc/vmtools/vmtools.conf", kind: .configuration) }
        #expect(e?.subject == "/etc/vmtools/vmtools.conf:2")
        #expect(e?.message.contains(reason) == true, "\(e?.message ?? "")")
    }

    @Test func templatesMayNameTemplatesButNotParents() throws {
        let r = try ConfigFileParser.parse("template a b\nvm_x=1\n", path: "t.tpl", kind: .template)
        #expect(r.statements.first == .template(names: ["a", "b"], line: 1))
        let e = expectError { _ = try ConfigFileParser.parse("parent /x\n", path: "t.tpl", kind: .template) }
        #expect(e?.message.contains("must not contain a 'parent'") == true)
        let bad = expectError { _ = try ConfigFileParser.parse("template 'a b'\n", path: "t.tpl", kind: .template) }
        #expect(bad?.subject == "t.tpl:1")
    }

}

extension ConfigFileParserTests {
    @Test func lineNumbersCountContinuationLines() {
        let e = expectError { _ = try ConfigFileParser.parse("vm_a=\"x\\\ny\"\nvm_b=1\nvm_c=$(id)\n", path: "f", kind: .configuration) }
        #expect(e?.subject == "f:4")
    }
}
