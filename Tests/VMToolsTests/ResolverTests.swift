import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

@Suite struct ResolverTests {
    /// One value per layer; each layer above overrides `vm_custom_N` for N ≥ its rank.
    func layeredTree(_ s: Scratch) throws {
        let names = (1...8).map { "vm_custom_\($0)" }
        func assign(_ from: Int, _ label: String) -> String {
            names[(from - 1)...].map { "\($0)=\(label)" }.joined(separator: "\n") + "\n"
        }
        try s.write("share/vmtools.conf", "cfg_include_userhome=yes\n" + names.map { "\($0)=share" }.joined(separator: "\n") + "\n")
        try s.write("etc/vmtools.conf", assign(2, "etc"))
        try s.write("user/vmtools/vmtools.conf", assign(3, "user"))
        try s.write("etc/templates/base.tpl", assign(4, "template"))
        // A depth-3 parent chain: root (references the template) → mid → parent → vm.
        try s.write("root/vm.settings", "template base\n" + assign(5, "root"))
        try s.write("root/mid/vm.settings", "parent \(s.url("root"))\n" + assign(6, "mid"))
        try s.write("root/mid/parent/vm.settings", "parent ..\n" + assign(7, "parent"))
        try s.write("root/mid/parent/vm/vm.settings", "parent \(s.url("root/mid/parent"))\nvm_name=leaf\n" + assign(8, "vm"))
    }

    @Test func layersApplyInOrder() throws {
        let s = Scratch()
        try layeredTree(s)
        var cli = CommandLineSettings()
        try cli.parseOverride("vm_custom_8=cli")
        let r = resolver(s, cli)
        let g = try r.loadGlobal()
        let vm = try r.loadVM(home: s.url("root/mid/parent/vm"), global: g)
        let got = (1...8).map { vm.settings.value("vm_custom_\($0)") }
        #expect(got == ["share", "etc", "user", "template", "root", "mid", "parent", "cli"])
        #expect(vm.settings.value("vm_ram_size") == "2G")
        #expect(vm.settings.provenance("vm_ram_size") == .builtin)
        #expect(vm.name == "leaf")
        #expect(vm.ancestors == [s.url("root/mid/parent"), s.url("root/mid"), s.url("root")])
        #expect(vm.parent == s.url("root/mid/parent"))
        #expect(vm.templates == ["base"])
    }

    @Test func provenanceNamesFileAndLine() throws {
        let s = Scratch()
        try layeredTree(s)
        var cli = CommandLineSettings()
        try cli.parseOverride("vm_custom_8=cli")
        let r = resolver(s, cli)
        let vm = try r.loadVM(home: s.url("root/mid/parent/vm"), global: try r.loadGlobal())
        #expect(vm.settings.provenance("vm_custom_1") == .config(layer: .share, path: s.url("share/vmtools.conf"), line: 2))
        #expect(vm.settings.provenance("vm_custom_2") == .config(layer: .etc, path: s.url("etc/vmtools.conf"), line: 1))
        #expect(vm.settings.provenance("vm_custom_3") == .config(layer: .user, path: s.url("user/vmtools/vmtools.conf"), line: 1))
        #expect(vm.settings.provenance("vm_custom_4") == .template(name: "base", path: s.url("etc/templates/base.tpl"), line: 1))
        #expect(vm.settings.provenance("vm_custom_5") == .vmFile(path: s.url("root/vm.settings"), line: 2, depth: 3))
        #expect(vm.settings.provenance("vm_custom_7") == .vmFile(path: s.url("root/mid/parent/vm.settings"), line: 2, depth: 1))
        #expect(vm.settings.provenance("vm_name") == .vmFile(path: s.url("root/mid/parent/vm/vm.settings"), line: 2, depth: 0))
        #expect(vm.settings.provenance("vm_custom_8") == .commandLine("-o"))
        // The whole history is kept: the -o value replaced the VM's own.
        #expect(vm.settings.entries["vm_custom_8"]?.overridden.map(\.value) == ["share", "etc", "user", "template", "root", "mid", "parent", "vm"])
    }

    /// Issue 5: a chain of three templates, a parent chain, the VM and -o;
    /// the nearer source wins each time, and says where the value comes from.
    @Test func aChainOfThreeTemplatesUnderParentsVMAndCommandLine() throws {
        let s = Scratch()
        let letters = ["a", "b", "c", "d", "e", "f"]
        func assign(from: String, _ label: String) -> String {
            letters[letters.firstIndex(of: from)!...].map { "vm_custom_\($0)=\(label)" }.joined(separator: "\n") + "\n"
        }
        try s.write("share/vmtools.conf", letters.map { "vm_custom_\($0)=default" }.joined(separator: "\n") + "\n")
        try s.write("share/templates/t3.tpl", assign(from: "a", "t3"))
        try s.write("etc/templates/t2.tpl", "template t3\n" + assign(from: "b", "t2"))
        try s.write("etc/templates/t1.tpl", "template t2\n" + assign(from: "c", "t1"))
        try s.write("parent/vm.settings", "template t1\n" + assign(from: "d", "parent"))
        try s.write("parent/vm/vm.settings", "parent ..\n" + assign(from: "e", "vm"))
        var cli = CommandLineSettings()
        try cli.parseOverride("vm_custom_f=cli")
        let r = resolver(s, cli)
        let vm = try r.loadVM(home: s.url("parent/vm"), global: try r.loadGlobal())
        #expect(letters.map { vm.settings.value("vm_custom_\($0)") } == ["t3", "t2", "t1", "parent", "vm", "cli"])
        #expect(vm.templates == ["t1", "t2", "t3"])
        #expect(vm.settings.provenance("vm_custom_a") == .template(name: "t3", path: s.url("share/templates/t3.tpl"), line: 1))
        #expect(vm.settings.provenance("vm_custom_b") == .template(name: "t2", path: s.url("etc/templates/t2.tpl"), line: 2))
        #expect(vm.settings.provenance("vm_custom_c") == .template(name: "t1", path: s.url("etc/templates/t1.tpl"), line: 2))
        #expect(vm.settings.provenance("vm_custom_d") == .vmFile(path: s.url("parent/vm.settings"), line: 2, depth: 1))
        #expect(vm.settings.provenance("vm_custom_e") == .vmFile(path: s.url("parent/vm/vm.settings"), line: 2, depth: 0))
        #expect(vm.settings.provenance("vm_custom_f") == .commandLine("-o"))
        #expect(vm.settings.entries["vm_custom_f"]?.overridden.map(\.value) == ["default", "t3", "t2", "t1", "parent", "vm"])
        // Too deep a chain is an error naming the limit.
        try s.write("etc/vmtools.conf", "cfg_limit_nesting=2\n")
        let e = expectError { _ = try r.loadVM(home: s.url("parent/vm"), global: try r.loadGlobal()) }
        #expect(e?.message.contains("cfg_limit_nesting") == true, "\(String(describing: e))")
    }

    /// Issue 10 C5: the user's file is read by default; /etc can turn it off,
    /// and -o can turn it back on.
    @Test func theUserFileIsReadUnlessTurnedOff() throws {
        let s = Scratch()
        try s.write("user/vmtools/vmtools.conf", "vm_ram_size=9G\n")
        #expect(try resolver(s).loadGlobal().settings.value("vm_ram_size") == "9G")
        try s.write("etc/vmtools.conf", "cfg_include_userhome=no\n")
        #expect(try resolver(s).loadGlobal().settings.value("vm_ram_size") == "2G")
        var cli = CommandLineSettings()
        cli.set("vm_cpu_count", "3", flag: "-x")
        try cli.parseOverride("cfg_include_userhome=yes")
        let g = try resolver(s, cli).loadGlobal()
        #expect(g.settings.value("vm_ram_size") == "9G")
        #expect(g.files == [s.url("etc/vmtools.conf"), s.url("user/vmtools/vmtools.conf")])
        // Options before -o cfg_include_userhome=yes are not lost (the original dropped them).
        try s.write("vm/vm.settings", "vm_name=v\n")
        #expect(try resolver(s, cli).loadVM(home: s.url("vm"), global: g).settings.value("vm_cpu_count") == "3")
    }

    @Test func xdgConfigHomeIsHonouredWhenAbsolute() {
        let p = SystemPaths(environment: ["HOME": "/home/ann", "XDG_CONFIG_HOME": "/cfg"], executablePath: "/opt/vm/bin/vmtools")
        #expect(p.userConfig == "/cfg/vmtools/vmtools.conf")
        #expect(p.dataDir == "/opt/vm/share/vmtools")
        #expect(p.sysconfDir == "/opt/vm/etc/vmtools")
        let relative = SystemPaths(environment: ["HOME": "/home/ann", "XDG_CONFIG_HOME": "cfg"], executablePath: "/usr/local/bin/vmtools")
        #expect(relative.userConfig == "/home/ann/.config/vmtools/vmtools.conf")
        #expect(relative.sysconfDir == "/etc/vmtools")
        let env = SystemPaths(environment: ["VMTOOLS_DATADIR": "/d", "VMTOOLS_SYSCONFDIR": "/e"], executablePath: "/usr/bin/vmtools")
        #expect(env.dataDir == "/d" && env.sysconfDir == "/e" && env.userDir == nil)
    }

    @Test func relativeParentsAreRelativeToTheSettingsFile() throws {
        let s = Scratch()
        try s.write("a/vm.settings", "vm_ram_size=3G\n")
        try s.write("a/b/vm.settings", "parent ..\n")
        try s.write("c/vm.settings", "parent ../a/b\n")
        let g = try resolver(s).loadGlobal()
        // The current directory plays no part.
        let vm = try resolver(s).loadVM(home: s.url("c"), global: g)
        #expect(vm.ancestors == [s.url("a/b"), s.url("a")])
        #expect(vm.settings.value("vm_ram_size") == "3G")
    }

    @Test func parentLoopsAreErrors() throws {
        let s = Scratch()
        try s.write("a/vm.settings", "parent \(s.url("b"))\n")
        try s.write("b/vm.settings", "parent \(s.url("a"))\n")
        let g = try resolver(s).loadGlobal()
        let e = expectError { _ = try resolver(s).loadVM(home: s.url("a"), global: g) }
        #expect(e?.message.contains("parent loop") == true)
        #expect(e?.subject == s.url("b/vm.settings") + ":1")
    }

    @Test func parentChainsLongerThanTheLimitAreErrors() throws {
        let s = Scratch()
        var path = "v0"
        try s.write("v0/vm.settings", "vm_name=v0\n")
        for k in 1...5 {
            path += "/v\(k)"
            try s.write("\(path)/vm.settings", "parent ..\n")
        }
        var cli = CommandLineSettings()
        try cli.parseOverride("cfg_limit_nesting=4")
        let g = try resolver(s, cli).loadGlobal()
        let e = expectError { _ = try resolver(s, cli).loadVM(home: s.url(path), global: g) }
        #expect(e?.message.contains("cfg_limit_nesting (4)") == true)
    }

    @Test func missingParentsNameTheFile() throws {
        let s = Scratch()
        try s.write("a/vm.settings", "vm_x=1\nparent /nonexistent/vm\n")
        let e = expectError { _ = try resolver(s).loadVM(home: s.url("a"), global: try resolver(s).loadGlobal()) }
        #expect(e?.subject == s.url("a/vm.settings") + ":2")
        #expect(e?.message.contains("vmfix -p") == true)
    }

    @Test func templateCyclesAndNestingAreErrors() throws {
        let s = Scratch()
        try s.write("etc/templates/a.tpl", "template b\n")
        try s.write("etc/templates/b.tpl", "template a\n")
        try s.write("vm/vm.settings", "template a\n")
        let g = try resolver(s).loadGlobal()
        let e = expectError { _ = try resolver(s).loadVM(home: s.url("vm"), global: g) }
        #expect(e?.message == "template loop: a → b → a")
        try s.write("etc/templates/self.tpl", "template self\n")
        try s.write("vm/vm.settings", "template self\n")
        #expect(expectError { _ = try resolver(s).loadVM(home: s.url("vm"), global: g) }?.message == "template loop: self → self")
    }

    @Test func templatesActAsDefaultsTheVMOverrides() throws {
        let s = Scratch()
        try s.write("share/templates/macos.tpl", """
        vm_cpu_type=core2duo
        vm_ram_size=4G
        vm_qemu_params="$vm_qemu_params -machine q35"
        template nested
        cfg_limit_nesting=3
        """)
        try s.write("share/templates/nested.tpl", "vm_custom_n=nested\n")
        try s.write("etc/templates/macos.tpl", "vm_ram_size=8G\n")  // /etc beats share
        try s.write("vm/vm.settings", "template macos\nvm_ram_size=1G\n")
        let warnings = WarningSink()
        let g = try resolver(s).loadGlobal()
        var vm = try resolver(s, warnings: warnings).loadVM(home: s.url("vm"), global: g)
        #expect(vm.settings.value("vm_ram_size") == "1G")
        #expect(vm.templateFiles["macos"] == s.url("etc/templates/macos.tpl"))
        try FileManager.default.removeItem(atPath: s.url("etc/templates/macos.tpl"))
        vm = try resolver(s, warnings: warnings).loadVM(home: s.url("vm"), global: g)
        #expect(vm.settings.value("vm_ram_size") == "1G")
        #expect(vm.settings.value("vm_cpu_type") == "core2duo")
        #expect(vm.settings.value("vm_qemu_params") == "-usbdevice tablet -machine q35")
        #expect(vm.settings.value("vm_custom_n") == "nested")
        #expect(vm.settings.value("cfg_limit_nesting") == "100")
        #expect(vm.templates == ["macos", "nested"])
        #expect(warnings.messages.contains { $0.contains("cfg_limit_nesting ignored") })
        // -t templates come after the files.
        var cli = CommandLineSettings()
        try cli.addTemplate("big")
        try s.write("etc/templates/big.tpl", "vm_ram_size=16G\n")
        vm = try resolver(s, cli).loadVM(home: s.url("vm"), global: g)
        #expect(vm.settings.value("vm_ram_size") == "16G")
        #expect(vm.templates == ["macos", "nested", "big"])
    }

    @Test func unknownTemplatesAreErrors() throws {
        let s = Scratch()
        try s.write("vm/vm.settings", "template nothere\n")
        let e = expectError { _ = try resolver(s).loadVM(home: s.url("vm"), global: try resolver(s).loadGlobal()) }
        #expect(e?.message.contains("nothere.tpl") == true)
    }

    @Test func commandLineRules() throws {
        var cli = CommandLineSettings()
        cli.set("vm_boot_order", "d", flag: "-D")
        try cli.parseOverride("vm_boot_order=n")
        cli.set("vm_boot_order", "c", flag: "-C")
        try cli.parseOverride("vm_name=a=b")
        try cli.parseOverride("vm_name=John's VM")
        #expect(cli.value("vm_boot_order") == "n")
        #expect(cli.value("vm_name") == "John's VM")
        for bad in ["=x", "vm_x=", "noequals", "PATH=/x", "vm_a b=1", "vm_home=/x"] {
            #expect(expectError { try cli.parseOverride(bad) }?.code == .usage)
        }
    }

    @Test func onlyKnownSettingsMayBeOverridden() throws {
        let s = Scratch()
        var cli = CommandLineSettings()
        try cli.parseOverride("vm_custom_thing=1")
        #expect(expectError { _ = try resolver(s, cli).loadGlobal() }?.code == .usage)
        try s.write("etc/vmtools.conf", "vm_custom_thing=0\n")
        #expect(try resolver(s, cli).loadGlobal().knownNames.contains("vm_custom_thing"))
        var iface = CommandLineSettings()
        try iface.parseOverride("vm_networking_iface12_mac=52:54:00:00:00:01")
        _ = try resolver(s, iface).loadGlobal()
        var bad = CommandLineSettings()
        try bad.parseOverride("vm_networking_iface7_modeXYZ=user")
        #expect(expectError { _ = try resolver(s, bad).loadGlobal() }?.code == .usage)
    }

    @Test func invalidGlobalValuesNameTheSettingAndFile() throws {
        let s = Scratch()
        try s.write("etc/vmtools.conf", "cfg_limit_waitlock=soon\n")
        let e = expectError { _ = try resolver(s).loadGlobal() }
        #expect(e?.subject == "cfg_limit_waitlock")
        #expect(e?.message.contains(s.url("etc/vmtools.conf") + ":1") == true)
    }

    /// etc/vmtools.conf is the single source of the defaults.
    @Test func compiledDefaultsMatchTheShippedFile() throws {
        let parsed = try ConfigFileParser.parseFile(Repo.root + "/etc/vmtools.conf", kind: .configuration)
        var fromFile: [String] = []
        for case let .assign(name, parts, _) in parsed.statements {
            fromFile.append("\(name)=\(SettingsResolver.expand(parts, SettingsTable()))")
        }
        #expect(fromFile == Defaults.values.map { "\($0.name)=\($0.value)" })
        #expect(parsed.ignored.isEmpty)
    }

    /// …and it stays a POSIX shell file that old scripts may source.
    @Test func theShippedFileIsValidPOSIXShell() throws {
        let names = Defaults.values.map(\.name)
        let script = ". \"$1\"; " + names.map { "printf '%s=%s\\n' \($0) \"$\($0)\"" }.joined(separator: "; ")
        let r = try Subprocess("/bin/sh", ["-c", script, "sh", Repo.root + "/etc/vmtools.conf"]).run()
        #expect(r.status == 0)
        #expect(r.stdoutText == Defaults.values.map { "\($0.name)=\($0.value)\n" }.joined())
    }
}
