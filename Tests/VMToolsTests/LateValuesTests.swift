import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch

/// Issue 23, item 2: late values by name. The plan holds named placeholders
/// with typed choices; the executor fills them in from the plan alone, and
/// what planning used to ask the host is a step of the plan `vmup -n` lists.
@Suite struct LateValuesTests {
    let build = BuildCmdTests()

    /// No module runs during execution: the executor renders the plan's own
    /// text. Here that text is changed after planning, where no module
    /// would write it (an extra SPICE option, another guest port for
    /// passt); an executor that rebuilt a value with a module's function
    /// would lose the change. Only the placeholders become ports.
    @Test func theExecutorFillsInThePlanWithoutItsModules() throws {
        let s = Scratch()
        try s.writeScript("bin/passt", "#!/bin/sh\nexit 0\n")
        try s.mkdir("vm")
        var c = try build.command(s, ["vm_display_type": "spice", "vm_networking_iface1_enable": "yes", "vm_networking_iface1_mac": "52:54:00:00:00:01",
                                      "vm_networking_iface1_mode": "passt", "vm_networking_iface1_forward": "tcp::80", "vm_name": "v"],
                                  home: s.url("vm"), dryRun: false, environment: ["PATH": s.url("bin")])
        #expect(c.plan.portChoices.map(\.name) == ["spice-port", "nd1-forward0-port"], "\(c.plan.portChoices)")
        #expect(c.plan.preview.argv.contains("addr=127.0.0.1,port=5900,disable-ticketing=on"))
        let spice = try #require(c.plan.argv.firstIndex { $0.hasPrefix("addr=127.0.0.1,port=") })
        c.plan.argv[spice] += ",seamless-migration=on"
        let passt = try #require(c.plan.helpers.first?.arguments.firstIndex { $0.hasPrefix("127.0.0.1/") && $0.hasSuffix(":80") })
        c.plan.helpers[0].arguments[passt] = String(c.plan.helpers[0].arguments[passt].dropLast(3)) + ":8080"

        var run = try build.executor(s, c)
        try run.choosePorts()
        let p = run.plan
        #expect(p.portChoices.isEmpty)
        #expect(!(p.argv + p.notices + p.helpers.flatMap(\.arguments)).contains { $0.contains("\u{1}") }, "no placeholder is left")
        let option = try #require(p.argv.first { $0.hasPrefix("addr=127.0.0.1,port=") })
        let port = try #require(Int(option.dropFirst("addr=127.0.0.1,port=".count).prefix { $0.isNumber }))
        #expect(port >= 5900 && option == "addr=127.0.0.1,port=\(port),disable-ticketing=on,seamless-migration=on", "\(option)")
        #expect(p.notices.contains("v: listening on spice://127.0.0.1:\(port)"), "\(p.notices)")
        let forward = try #require(p.helperForwards.first?.forward.hostPort)
        #expect(forward > 0 && p.helpers[0].arguments[passt] == "127.0.0.1/\(forward):8080", "\(p.helpers[0].arguments)")
    }

    /// A value that merely looks like a placeholder, with a name the plan
    /// does not choose, stays as written.
    @Test func onlyThePlansOwnPlaceholdersAreFilled() {
        var plan = LaunchPlan()
        plan.portChoices = [.init(name: "spice-port", rule: .firstFree(iface: "127.0.0.1", lowest: 5900), setting: "vm_display_iface")]
        let foreign = "x" + LaunchPlan.placeholder("other", preview: "1") + "y"
        plan.argv = ["qemu", "port=" + LaunchPlan.placeholder("spice-port", preview: "5900"), foreign]
        #expect(plan.preview.argv == ["qemu", "port=5900", foreign])
        #expect(plan.filled(["spice-port": "5907"]).argv == ["qemu", "port=5907", foreign])
    }

    /// `vmup -n` lists the probe a real start asks (and does not ask it).
    @Test(.requires("qemu-system-x86_64")) func vmupDryRunListsTheProbe() throws {
        guard requireTool("qemu-system-x86_64") != nil else { return }
        let s = Scratch()
        let cli = try CLI(s)
        try s.write("vm/vm.settings", "vm_name=vm\nvm_display_type=vnc\nvm_display_clipboard=yes\n")
        let r = try cli.run("vmup", ["-n", s.url("vm")])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.split(separator: "\n").contains { $0.contains("would ask ") && $0.hasSuffix(" -chardev help whether it has qemu-vdagent (vm_display_clipboard)") },
                "\(r.err)")
        let none = try cli.run("vmup", ["-n", "-o", "vm_display_clipboard=no", s.url("vm")])
        #expect(none.status == 0 && !none.err.contains("-chardev help"), "\(none.err)")
    }

    /// `vmup -n` lists the conversion of an imported image a real start
    /// makes first, plans the disk it makes, and converts nothing.
    @Test(.requires("qemu-img", "qemu-system-x86_64")) func vmupDryRunListsTheConversion() throws {
        guard let qemuImg = requireTool("qemu-img"), requireTool("qemu-system-x86_64") != nil else { return }
        let s = Scratch()
        let cli = try CLI(s)
        try s.mkdir("img")
        #expect(try Subprocess(qemuImg, ["create", "-q", "-f", "vmdk", s.url("img/disk.vmdk"), "8M"]).run().status == 0)
        let r = try cli.run("vmup", ["-n", "-v", "-y", "-o", "vm_display_type=none", s.url("img/disk.vmdk")])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("would convert \(s.url("img/disk.vmdk")) into \(s.url("img/disk.qcow2"))"), "\(r.err)")
        #expect(r.out.contains("file=\(s.url("img/disk.qcow2")),format=qcow2"), "\(r.out)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.url("img")) == ["disk.vmdk"], "nothing converted")
    }
}
