import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// Issue 10, settings part: files that stall or hang the tools, exponential
/// templates, the module check through symbolic links, small reader fixes,
/// the checkout's defaults and the user's configuration without root.
@Suite struct SettingsHardeningTests {
    /// Runs a command of `cli` and kills it when `seconds` pass: a hang fails
    /// the test instead of stalling the suite. nil when it was killed.
    func run(_ cli: CLI, _ name: String, _ args: [String], within seconds: Double = 20,
             executable: String? = nil, environment: [String: String]? = nil,
             sourceLocation: SourceLocation = #_sourceLocation) throws -> CLI.Result? {
        try cli.run(executable ?? name, args, environment: environment ?? cli.environment, within: seconds, sourceLocation: sourceLocation)
    }

    func fifo(_ s: Scratch, _ rel: String) throws {
        if let slash = rel.lastIndex(of: "/") { try s.mkdir(String(rel[..<slash])) }
        #expect(mkfifo(s.url(rel), 0o600) == 0)
    }

    // MARK: B3 — linear resolution

    @Test func historyStaysCompleteAndInOrder() {
        var t = SettingsTable()
        for i in 0..<1000 { t.set("vm_x", "\(i)", .derived("step \(i)")) }
        let e = t.entries["vm_x"]
        #expect(e?.value == "999")
        #expect(e?.provenance == .derived("step 999"))
        #expect(e?.overridden.map(\.value) == (0..<999).map { "\($0)" })
        #expect(e?.overridden.last?.provenance == .derived("step 998"))
        // A copy keeps its own history (value semantics survive the in-place update).
        var copy = t
        copy.set("vm_x", "new", .builtin)
        #expect(t.entries["vm_x"]?.overridden.count == 999)
        #expect(copy.entries["vm_x"]?.overridden.count == 1000)
    }

    /// 60,000 assignments of one name took 69 s (the history was copied on
    /// each); the benchmark (Benchmarks/settings.sh) holds the real target.
    @Test func sixtyThousandAssignmentsResolveQuickly() throws {
        let cli = try CLI(Scratch())
        _ = try cli.scratch.write("vm/vm.settings", String(repeating: "vm_x=1\n", count: 60_000))
        _ = try cli.scratch.write("share/templates/modern.tpl", "vm_ram_size=4G\n")
        _ = try cli.scratch.write("tpl/vm.settings", String(repeating: "template modern\n", count: 20_000))
        for vm in ["vm", "tpl"] {
            let r = try run(cli, "vminfo", ["-s", cli.scratch.url(vm)], within: 15)
            #expect(r?.status == 0, "\(r?.err ?? "")")
        }
    }

    // MARK: B4 — FIFOs and devices

    @Test func readersRefuseFIFOsAndDevicesNamingTheFile() throws {
        let s = Scratch()
        try fifo(s, "p")
        for path in [s.url("p"), "/dev/null", s.path] {
            let e = expectError { _ = try FileSystem.readBytes(path) }
            #expect(e?.subject == path)
            #expect(e?.message.contains("not a regular file") == true, "\(String(describing: e))")
        }
        try fifo(s, "vm/childs.lst")
        try s.write("vm/vm.settings", "vm_name=vm\n")
        let g = try resolver(s).loadGlobal()
        let e = expectError { _ = try ChildList.read(home: s.url("vm"), global: g) }
        #expect(e?.description.contains("\(s.url("vm/childs.lst")): is a FIFO") == true, "\(String(describing: e))")
    }

    @Test func aFIFOAsParentSettingsTemplateOrConfigurationIsRefused() throws {
        let cli = try CLI(Scratch())
        let s = cli.scratch
        // The parent's vm.settings.
        try fifo(s, "par/vm.settings")
        try s.write("child/vm.settings", "parent ../par\nvm_name=child\n")
        var r = try run(cli, "vminfo", ["-s", s.url("child")])
        #expect(r?.status == 1)
        #expect(r?.err.contains("\(s.url("par/vm.settings")): is a FIFO, not a regular file") == true, "\(r?.err ?? "")")
        // A template.
        try fifo(s, "share/templates/t.tpl")
        try s.write("vm/vm.settings", "template t\nvm_name=vm\n")
        r = try run(cli, "vminfo", ["-s", s.url("vm")])
        #expect(r?.status == 1)
        #expect(r?.err.contains("\(s.url("share/templates/t.tpl")): is a FIFO") == true, "\(r?.err ?? "")")
        // vmtools.conf.
        try fifo(s, "etc/vmtools.conf")
        r = try run(cli, "vmrndmac", [])
        #expect(r?.status == 1)
        #expect(r?.err.contains("\(s.url("etc/vmtools.conf")): is a FIFO") == true, "\(r?.err ?? "")")
    }

    @Test(.requires("qemu-system-x86_64")) func aFIFOAsChildListOrPidFileDoesNotHang() throws {
        guard requireTool("qemu-system-x86_64") != nil else { return }
        let cli = try CLI(Scratch())
        let s = cli.scratch
        try s.write("vm/vm.settings", "vm_name=vm\nvm_display_type=none\n")
        try s.write("up/vm.settings", "vm_name=up\nvm_display_type=none\n")
        try fifo(s, "vm/childs.lst")
        try fifo(s, "up/qemu.pid")
        // vminfo counts children (childs.lst); vmup first asks whether the VM runs (qemu.pid).
        // vminfo still reports the VM, and says what is wrong with its child list.
        let info = try run(cli, "vminfo", [s.url("vm")])
        #expect(info?.status == 1 && info?.out.contains("= \(s.url("vm"))") == true, "\(info?.err ?? "")")
        #expect(info?.err.contains("\(s.url("vm/childs.lst")): is a FIFO, not a regular file") == true, "\(info?.err ?? "")")
        let up = try run(cli, "vmup", ["-n", "-v", s.url("up")])
        #expect(up?.status == 0, "\(up?.err ?? "")")
        #expect(up?.out.contains("-pidfile") == true)
        // A command that needs the child list says what is wrong with it.
        let refused = try run(cli, "vmup", ["-n", s.url("vm")])
        #expect(refused?.status == 1)
        #expect(refused?.err.contains("\(s.url("vm/childs.lst")): is a FIFO, not a regular file") == true, "\(refused?.err ?? "")")
    }

    // MARK: B5 — templates applied once

    @Test func aTemplateNamedTwiceIsAppliedOnce() throws {
        let s = Scratch()
        // 12 levels of `template t(i+1) t(i+1)`: 4095 applications before the fix.
        for i in 0..<12 {
            try s.write("share/templates/t\(i).tpl", "vm_hits=\"${vm_hits}.\"\ntemplate t\(i + 1) t\(i + 1)\n")
        }
        try s.write("share/templates/t12.tpl", "vm_hits=\"${vm_hits}!\"\n")
        try s.write("share/vmtools.conf", "vm_hits=''\n")
        try s.write("vm/vm.settings", "template t0 t0\ntemplate t0\nvm_name=vm\n")
        let r = resolver(s)
        let vm = try r.loadVM(home: s.url("vm"), global: try r.loadGlobal())
        #expect(vm.settings.value("vm_hits") == "............!")
        #expect(vm.templates == (0...12).map { "t\($0)" })
        // A loop is still an error, not a silent skip.
        try s.write("share/templates/t12.tpl", "template t3\n")
        let e = expectError { _ = try r.loadVM(home: s.url("vm"), global: try r.loadGlobal()) }
        #expect(e?.message.contains("template loop:") == true, "\(String(describing: e))")
    }

    @Test func fortyLevelsOfDoubledTemplatesResolveAtOnce() throws {
        let cli = try CLI(Scratch())
        for i in 0..<40 {
            _ = try cli.scratch.write("share/templates/t\(i).tpl", "vm_level_\(i)=x\ntemplate t\(i + 1) t\(i + 1)\n")
        }
        _ = try cli.scratch.write("share/templates/t40.tpl", "vm_ram_size=3G\n")
        _ = try cli.scratch.write("vm/vm.settings", "template t0\n")
        let r = try run(cli, "vminfo", ["-s", cli.scratch.url("vm")], within: 15)
        #expect(r?.status == 0, "\(r?.err ?? "")")
        #expect(r?.out.contains("vm_ram_size=3G") == true, "\(r?.out ?? "")")
    }

    // MARK: B6 — module check through a symbolic link

    @Test func aModuleLinkedFromAnUnsafeDirectoryIsNotRun() throws {
        let cli = try CLI(Scratch())
        let s = cli.scratch
        try s.write("vm/vm.settings", "vm_name=vm\nvm_display_type=none\n")
        let target = try s.writeScript("open/name", "#!/bin/sh\necho -name; echo hacked\n")
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: s.url("open"))
        try s.mkdir("xdg/vmtools/modules/buildcmd")
        try FileManager.default.createSymbolicLink(atPath: s.url("xdg/vmtools/modules/buildcmd/name"), withDestinationPath: target)
        let r = try cli.run("vmup", ["-n", "-v", s.url("vm")])
        #expect(r.status == 0, "\(r.err)")
        #expect(!r.out.contains("hacked"))
        #expect(r.err.contains("modules/buildcmd/name: ignored, it links to \(target): the directory of its target \(s.url("open")) is writable by group or others"), "\(r.err)")
        // The same script in a safe directory runs.
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: s.url("open"))
        let safe = try cli.run("vmup", ["-n", "-v", s.url("vm")])
        #expect(safe.out.contains("hacked"), "\(safe.err)")
    }

    // MARK: B9 — CRLF, shell-literal values, cfg_file_*

    @Test func crlfLineEndsAreReadEverywhere() throws {
        let s = Scratch()
        try s.write("etc/vmtools.conf", "vm_ram_size='3G'\r\nvm_cpu_count=4\r\n")
        try s.write("etc/templates/a.tpl", "template b\r\nvm_display_type=none\r\n")
        try s.write("etc/templates/b.tpl", "vm_boot_order=c\r\n")
        try s.write("vm/vm.settings", "template a\r\nvm_name=vm\r\n")
        let r = resolver(s)
        let vm = try r.loadVM(home: s.url("vm"), global: try r.loadGlobal())
        #expect(vm.settings.value("vm_ram_size") == "3G")
        #expect(vm.settings.value("vm_cpu_count") == "4")
        #expect(vm.settings.value("vm_display_type") == "none")
        #expect(vm.settings.value("vm_boot_order") == "c")
        #expect(vm.templates == ["a", "b"])
        // A CR that is not a line end is data, and never printed raw.
        let e = expectError { _ = try ConfigFileParser.parse("echo\rvm_x=1\n", path: "c", kind: .configuration) }
        #expect(e?.message.contains("'echo\\rvm_x=1'") == true, "\(String(describing: e))")
        #expect(e?.description.contains("\r") == false)
        for text in ["vm_a\r=1\n", "cfg_a\r=1\n", "vm_a=x\ry\n", "template a\rb\n", "garbage\r here\n"] {
            let f = expectError { _ = try VMSettingsFile.parse(text, path: "s") }
            #expect(f?.description.contains("\r") == false, "\(String(describing: f))")
        }
        let g = expectError { _ = try ConfigFileParser.parse("vm_a=${x\ry}\n", path: "c", kind: .configuration) }
        #expect(g?.description.contains("\r") == false, "\(String(describing: g))")
    }

    @Test func valuesTheShellReadsLiterallyNeedNoQuotes() throws {
        let f = try VMSettingsFile.parse("vm_networking_iface1_mode=bridge:br0\nvm_a=a,b+c%d@e=f\nvm_b=x*y?[z]{1,2}#!^\nvm_c=a~b\n", path: "s")
        #expect(f.value("vm_networking_iface1_mode") == "bridge:br0")
        #expect(f.value("vm_a") == "a,b+c%d@e=f")
        #expect(f.value("vm_b") == "x*y?[z]{1,2}#!^")
        #expect(f.value("vm_c") == "a~b")
        // What the shell would expand stays refused, in both readers.
        for line in ["vm_d=~/x", "vm_d=/a:~/x", "vm_d=~root"] {
            let e = expectError { _ = try VMSettingsFile.parse(line + "\n", path: "s") }
            #expect(e?.message.contains("'~'") == true, "\(line): \(String(describing: e))")
        }
        let e = expectError { _ = try ConfigFileParser.parse("vm_d=/a:~/x\n", path: "c", kind: .configuration) }
        #expect(e?.message.contains("'~'") == true, "\(String(describing: e))")
        #expect(try ConfigFileParser.parse("vm_d=/a:'~'/x\n", path: "c", kind: .configuration).statements.count == 1)
        // A command word (parent) is still strict: the shell would glob it.
        #expect(expectError { _ = try VMSettingsFile.parse("parent /vms/*\n", path: "s") } != nil)
    }

    @Test(arguments: ["cfg_file_qmp", "cfg_file_serial", "cfg_file_tmpdir"])
    func everyFileNameSettingMustBeAPlainName(_ name: String) throws {
        let s = Scratch()
        try s.write("etc/vmtools.conf", "\(name)='../elsewhere/x'\n")
        let e = expectError { _ = try resolver(s).loadGlobal() }
        #expect(e?.subject == name)
        #expect(e?.message.contains("must be a plain file name") == true, "\(String(describing: e))")
    }

    // MARK: C2 — a checkout's binary uses the checkout's etc/

    @Test func aCheckoutIsRecognisedFromTheBinarysPath() throws {
        let s = Scratch()
        try s.write("co/Package.swift", "// swift-tools-version:6.0\n")
        try s.write("co/etc/vmtools.conf", "\n")
        let exe = s.url("co/.build/x86_64-unknown-linux-gnu/debug/vmtools")
        let p = SystemPaths(environment: ["HOME": "/home/ann"], executablePath: exe)
        #expect(p.dataDir == s.url("co/etc"))
        #expect(p.sysconfDir == "/etc/vmtools")
        #expect(p.dataDirOrigin.contains("checkout \(s.url("co"))"))
        // Not a checkout without its etc/vmtools.conf: the usual rules.
        try FileManager.default.removeItem(atPath: s.url("co/etc/vmtools.conf"))
        #expect(SystemPaths(environment: [:], executablePath: exe).dataDir == "/usr/local/share/vmtools")
        #expect(SystemPaths(environment: [:], executablePath: "/opt/x/bin/vmtools").dataDir == "/opt/x/share/vmtools")
    }

    @Test func aCheckoutBinaryIgnoresABrokenInstallation() throws {
        let cli = try CLI(Scratch())
        let s = cli.scratch
        // A fake checkout whose build directory looks like an installation
        // prefix (…/debug/bin/vmtools): without the rule, the broken
        // …/debug/share/vmtools/vmtools.conf would be read.
        try s.write("co/Package.swift", "// swift-tools-version:6.0\n")
        try s.write("co/etc/vmtools.conf", "vm_ram_size='5G'\n")
        try s.write("co/etc/templates/mine.tpl", "vm_cpu_count=7\n")
        let prefix = "co/.build/debug"
        try s.write("\(prefix)/share/vmtools/vmtools.conf", "vm_x=\"$newline\"\n")
        try s.mkdir("\(prefix)/bin")
        try FileManager.default.copyItem(atPath: try Repo.binary, toPath: s.url("\(prefix)/bin/vmtools"))
        try FileManager.default.createSymbolicLink(atPath: s.url("\(prefix)/bin/vminfo"), withDestinationPath: "vmtools")
        try s.write("vm/vm.settings", "template mine\nvm_name=vm\n")
        var env = cli.environment
        env["VMTOOLS_DATADIR"] = nil
        let r = try run(cli, "vminfo", ["-sl", s.url("vm")], executable: s.url("\(prefix)/bin/vminfo"), environment: env)
        #expect(r?.status == 0, "\(r?.err ?? "")")
        #expect(r?.out.contains("vm_ram_size=5G") == true, "\(r?.out ?? "")")
        #expect(r?.out.contains("vm_cpu_count=7") == true, "\(r?.out ?? "")")
    }

    @Test func aConfigurationErrorNamesItsLayer() throws {
        let s = Scratch()
        try s.write("etc/vmtools.conf", "vm_x=\"$newline\"\n")
        var e = expectError { _ = try resolver(s).loadGlobal() }
        #expect(e?.subject == s.url("etc/vmtools.conf") + ":1")
        #expect(e?.message.hasSuffix("(system layer: \(s.url("etc")), given)") == true, "\(String(describing: e))")
        try s.write("etc/vmtools.conf", "\n")
        try s.write("share/vmtools.conf", "echo hi\n")
        let env = ["VMTOOLS_DATADIR": s.url("share"), "VMTOOLS_SYSCONFDIR": s.url("etc"), "HOME": s.url("home")]
        let paths = SystemPaths(environment: env, executablePath: "/usr/bin/vmtools")
        e = expectError { _ = try SettingsResolver(paths: paths).loadGlobal() }
        #expect(e?.message.contains("(installation layer: \(s.url("share")), set by VMTOOLS_DATADIR)") == true, "\(String(describing: e))")
    }

    // MARK: C5 — the user's configuration without root

    @Test func whatOnlyTheUnsearchedUserDirectoryHoldsIsExplained() throws {
        let s = Scratch()
        try s.write("user/vmtools/templates/mine.tpl", "vm_cpu_count=3\n")
        try s.write("vm/vm.settings", "template mine\n")
        let r = resolver(s)
        #expect(try r.loadVM(home: s.url("vm"), global: try r.loadGlobal()).settings.value("vm_cpu_count") == "3")
        try s.write("etc/vmtools.conf", "\ncfg_include_userhome='no'\n")
        let e = expectError { _ = try r.loadVM(home: s.url("vm"), global: try r.loadGlobal()) }
        #expect(e?.message.contains("\(s.url("user/vmtools/templates/mine.tpl")) is not searched: cfg_include_userhome is 'no' (set by \(s.url("etc/vmtools.conf")):2)") == true, "\(String(describing: e))")
        // The same for a module.
        let script = s.url("user/vmtools/modules/buildcmd/c_mine")
        try s.writeScript("user/vmtools/modules/buildcmd/c_mine", "#!/bin/sh\n")
        let g = try r.loadGlobal()
        let m = expectError { _ = try ModuleRegistry.choose(.buildcmd, names: ["c_mine"], settings: g.settings, paths: s.paths) }
        #expect(m?.message.contains("\(script) is not searched: cfg_include_userhome is 'no'") == true, "\(String(describing: m))")
        try s.write("etc/vmtools.conf", "\n")
        #expect(try ModuleRegistry.choose(.buildcmd, names: ["c_mine"], settings: try r.loadGlobal().settings, paths: s.paths).first?.file == script)
    }
}
