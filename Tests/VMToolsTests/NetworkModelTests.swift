import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsLaunch

/// `vm_networking_ifaceN_mode`'s named models (vm.settings(5)): their
/// `-netdev` values, their errors, and the host checks of bridge and tap.
@Suite struct NetworkModelTests {
    let build = BuildCmdTests()

    func nets(_ argv: [String]) -> [String] {
        argv.enumerated().filter { $0.element == "-device" || $0.element == "-netdev" || $0.element == "-net" }.map { argv[$0.offset + 1] }
    }

    @Test func everyModelHasItsNetdev() throws {
        let s = Scratch()
        let argv = try build.args(s, [
            "vm_networking_iface1_enable": "yes", "vm_networking_iface1_mac": "52:54:00:00:00:01", "vm_networking_iface1_mode": "nat",
            "vm_networking_iface1_forward": "tcp:8080:80",
            "vm_networking_iface2_enable": "yes", "vm_networking_iface2_mac": "52:54:00:00:00:02", "vm_networking_iface2_mode": "bridge:br0",
            "vm_networking_iface3_enable": "yes", "vm_networking_iface3_mac": "52:54:00:00:00:03", "vm_networking_iface3_mode": "tap:tap7",
            "vm_networking_iface3_device": "virtio-net-pci",
            "vm_networking_iface4_enable": "yes", "vm_networking_iface4_mac": "52:54:00:00:00:04", "vm_networking_iface4_mode": "none",
            "vm_networking_iface5_enable": "yes", "vm_networking_iface5_mac": "52:54:00:00:00:05", "vm_networking_iface5_mode": "socket,listen=:1234",
        ])
        #expect(nets(argv) == [
            "e1000-82545em,mac=52:54:00:00:00:01,netdev=nd1", "user,hostfwd=tcp:127.0.0.1:8080-:80,id=nd1",
            "e1000-82545em,mac=52:54:00:00:00:02,netdev=nd2", "bridge,br=br0,helper=/usr/lib/qemu/qemu-bridge-helper,id=nd2",
            "virtio-net-pci,mac=52:54:00:00:00:03,netdev=nd3", "tap,ifname=tap7,script=no,downscript=no,id=nd3",
            "e1000-82545em,mac=52:54:00:00:00:05,netdev=nd5", "socket,listen=:1234,id=nd5",
        ])
    }

    @Test func onlyNoneGivesNoNetwork() throws {
        let s = Scratch()
        let argv = try build.args(s, ["vm_networking_iface1_enable": "yes", "vm_networking_iface1_mac": "52:54:00:00:00:01", "vm_networking_iface1_mode": "none"])
        #expect(nets(argv) == ["none"])
    }

    @Test func passtRunsBesideQEMUAndTakesTheForwards() throws {
        let s = Scratch()
        let passt = try s.writeScript("bin/passt", "#!/bin/sh\nexit 0\n")
        try s.mkdir("vm")
        let c = try build.command(s, ["vm_networking_iface1_enable": "yes", "vm_networking_iface1_mac": "52:54:00:00:00:01",
                                      "vm_networking_iface1_mode": "passt", "vm_networking_iface1_forward": "tcp:2222:22 udp:0.0.0.0:5353:53"],
                                  home: s.url("vm"), environment: ["PATH": s.url("bin")])
        let socket = s.url("vm/passt-nd1.sock")
        #expect(nets(c.argv) == ["e1000-82545em,mac=52:54:00:00:00:01,netdev=nd1", "stream,server=off,addr.type=unix,addr.path=\(socket),id=nd1"])
        #expect(c.plan.helpers == [.init(executable: passt, arguments: ["--foreground", "--one-off", "--quiet", "--runas", "\(geteuid()):\(getegid())", "--socket", socket,
                                                                       "-a", "10.0.2.15", "-n", "24", "-g", "10.0.2.2", "--dns-forward", "10.0.2.3",
                                                                       "-t", "127.0.0.1/2222:22", "-u", "0.0.0.0/5353:53"],
                                         readyPath: socket, forwardsFile: s.url("vm/passt-nd1.forwards"), log: s.url("vm/passt-nd1.log"))])
        // The ports are known without QEMU; a home gets ssh.config for guest port 22.
        #expect(c.plan.helperForwards.map(\.forward) == [PortForward(.tcp, hostPort: 2222, guestPort: 22), PortForward(.udp, address: "0.0.0.0", hostPort: 5353, guestPort: 53)])
        #expect(c.plan.forwardsSSH)
        #expect(!c.plan.otherDryRunLines.contains { $0.contains("which host ports its forwards took") }, "\(c.plan.otherDryRunLines)")
    }

    @Test(arguments: [
        ("bridge:", "vm_networking_iface1_mode: 'bridge:' (from command line (-o)): BRIDGE must be an interface name"),
        ("bridge:a/b", "vm_networking_iface1_mode: 'bridge:a/b' (from command line (-o)): BRIDGE must be an interface name"),
        ("tap:waytoolongname16", "vm_networking_iface1_mode: 'tap:waytoolongname16' (from command line (-o)): IFNAME must be an interface name"),
        ("tap:a,b", "vm_networking_iface1_mode: 'tap:a,b' (from command line (-o)): IFNAME must be an interface name"),
        ("nat:x", "vm_networking_iface1_mode: 'nat:x' (from command line (-o)): nat takes no argument"),
        ("none,x", "vm_networking_iface1_mode: 'none,x' (from command line (-o)): none takes no argument"),
        ("passt", "vm_networking_iface1_mode: 'passt' (from command line (-o)): passt is not installed"),
    ])
    func badModesNameTheSetting(mode: String, message: String) throws {
        let s = Scratch()
        #expect { try build.args(s, ["vm_networking_iface1_enable": "yes", "vm_networking_iface1_mac": "52:54:00:00:00:01", "vm_networking_iface1_mode": mode]) }
            throws: { ($0 as? VMToolsError)?.description.hasPrefix(message) == true }
    }

    @Test func theDefaultModeIsNamedWhenItIsBad() throws {
        let s = Scratch()
        #expect { try build.args(s, ["vm_networking_iface1_enable": "yes", "vm_networking_iface1_mac": "52:54:00:00:00:01", "vm_networking_default_mode": "tap:"]) }
            throws: { ($0 as? VMToolsError)?.description.hasPrefix("vm_networking_default_mode: 'tap:'") == true }
    }

    @Test func forwardsOnABridgeAreRefused() throws {
        let s = Scratch()
        #expect { try build.args(s, ["vm_networking_iface1_enable": "yes", "vm_networking_iface1_mac": "52:54:00:00:00:01",
                                     "vm_networking_iface1_mode": "bridge:br0", "vm_networking_iface1_forward": "tcp::22"]) }
            throws: { ($0 as? VMToolsError)?.description.contains("forwards need a user-mode interface") == true }
    }

    @Test func theBridgeHelperNeedsSetuidOrCapNetAdmin() throws {
        let s = Scratch()
        let helper = try s.writeScript("qemu-bridge-helper", "#!/bin/sh\n")
        // Root needs no capability: the checks below are for another user.
        #expect(NetworkHostCheck.helperProblem(helper, euid: 0) == nil)
        #expect(NetworkHostCheck.helperProblem(helper, euid: 1000) == "\(helper) is neither setuid root nor has cap_net_admin: as root run: setcap cap_net_admin+ep \(helper)")
        #expect(NetworkHostCheck.helperProblem(s.url("missing"), euid: 1000)?.contains("is missing") == true)
        // The capability as setcap(8) writes it, where root can.
        if geteuid() == 0, let setcap = Tools.path("setcap") {
            #expect(try run(setcap, ["cap_net_admin+ep", helper]) == 0)
            #expect(NetworkHostCheck.helperProblem(helper, euid: 1000) == nil)
            #expect(try run(setcap, ["cap_net_raw+ep", helper]) == 0)
            #expect(NetworkHostCheck.helperProblem(helper, euid: 1000) == "\(helper) lacks cap_net_admin: as root run: setcap cap_net_admin+ep \(helper)")
        }
        if geteuid() == 0 {
            #expect(chmod(helper, 0o4755) == 0)
            #expect(NetworkHostCheck.helperProblem(helper, euid: 1000) == nil)
        }
    }

    func run(_ tool: String, _ arguments: [String]) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = arguments
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    @Test func theACLMustAllowTheBridge() throws {
        let s = Scratch()
        let fix = "as root add the line 'allow br0' to "
        #expect(NetworkHostCheck.aclProblem(s.url("bridge.conf"), bridge: "br0") == "\(s.url("bridge.conf")) is missing: \(fix)\(s.url("bridge.conf"))")
        let acl = try s.write("bridge.conf", "# allow br0\nallow br1\n")
        #expect(NetworkHostCheck.aclProblem(acl, bridge: "br0") == "\(acl) does not allow bridge br0: \(fix)\(acl)")
        _ = try s.write("bridge.conf", "allow br1\ninclude \(s.url("more.conf"))\n")
        _ = try s.write("more.conf", "allow br0\n")
        #expect(NetworkHostCheck.aclProblem(acl, bridge: "br0") == nil)
        _ = try s.write("bridge.conf", "allow all\ndeny br0\n")
        #expect(NetworkHostCheck.aclProblem(acl, bridge: "br0") != nil)
        #expect(NetworkHostCheck.aclProblem(acl, bridge: "br2") == nil)
    }

    @Test func aTapMustExistAndBeATap() throws {
        let s = Scratch()
        #expect(NetworkHostCheck.tapProblem("tap0", sysfs: s.url("net"))?.hasPrefix("there is no network interface tap0: as root run: ip tuntap add dev tap0 mode tap user ") == true)
        try s.mkdir("net/eth0")
        #expect(NetworkHostCheck.tapProblem("eth0", sysfs: s.url("net")) == "eth0 is not a tap device")
        _ = try s.write("net/tap0/tun_flags", "0x1002\n")
        _ = try s.write("net/tap0/owner", "\(getuid())\n")
        _ = try s.write("net/tap0/group", "-1\n")
        #expect(NetworkHostCheck.tapProblem("tap0", sysfs: s.url("net")) == nil)
    }

    /// A real start checks the tap before QEMU runs; `-n` does not.
    @Test func aMissingTapFailsAStart() throws {
        let s = Scratch()
        let values = ["vm_networking_iface1_enable": "yes", "vm_networking_iface1_mac": "52:54:00:00:00:01", "vm_networking_iface1_mode": "tap:vmtnosuch0"]
        #expect(throws: Never.self) { try build.command(s, values, dryRun: true) }
        #expect { try build.command(s, values, dryRun: false) }
            throws: { ($0 as? VMToolsError)?.description.hasPrefix("vm_networking_iface1_mode: 'tap:vmtnosuch0' (from command line (-o)): there is no network interface vmtnosuch0") == true }
    }
}
