import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch

/// The tap and bridge models for real, inside network namespaces the test
/// makes and removes (vmtools.conf(5), `vm_networking_ifaceN_mode`): no
/// traffic leaves the machine, the machine's /etc is never written.
@Suite(.serialized) struct NetworkNamespaceTests {
    /// The lab's guests between two namespaces: `vm` holds the guest's tap
    /// or bridge and routes, `peer` is another host behind a veth pair.
    /// Removed when the lab ends, after its QEMUs.
    struct Net {
        let lab: BootLab
        let ip: String
        let vm = "vmtvm\(getpid())"
        let peer = "vmtpeer\(getpid())"
        var s: Scratch { lab.s }
        var cli: CLI { lab.cli }

        init?(sourceLocation: SourceLocation = #_sourceLocation) throws {
            guard let lab = try BootLab.guest(needing: "ip", "curl", sourceLocation: sourceLocation), let ip = Tools.path("ip") else { return nil }
            self.lab = lab
            self.ip = ip
            let namespaces = [vm, peer]
            lab.onEnd { lab in
                for ns in namespaces { _ = try? lab.cli.run(ip, ["netns", "del", ns], environment: lab.cli.environment, within: 30) }
            }
            for ns in [vm, peer] {
                try must(["netns", "add", ns])
                try must(["-n", ns, "link", "set", "lo", "up"])
            }
            // peer: 10.0.2.99/32 behind vm's veth; vm answers ARP for it on
            // the guest's side (proxy_arp) and routes between the two.
            try must(["-n", vm, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", peer])
            try must(["-n", vm, "addr", "add", "10.0.3.1/30", "dev", "va"])
            try must(["-n", vm, "link", "set", "va", "up"])
            try must(["-n", peer, "addr", "add", "10.0.2.99/32", "dev", "vb"])
            try must(["-n", peer, "link", "set", "vb", "up"])
            try must(["-n", peer, "route", "add", "10.0.3.0/30", "dev", "vb"])
            try must(["-n", peer, "route", "add", "10.0.2.0/24", "via", "10.0.3.1"])
            try must(["-n", vm, "route", "add", "10.0.2.99/32", "dev", "va"])
            try set(vm, "net/ipv4/ip_forward")
        }

        /// A namespace's sysctl to 1 (sysctl(8) is not on every PATH).
        func set(_ ns: String, _ name: String) throws {
            try must(["netns", "exec", ns, "/bin/sh", "-c", "echo 1 > \"$1\"", "sh", "/proc/sys/" + name])
        }

        @discardableResult
        func must(_ arguments: [String]) throws -> CLI.Result {
            let r = try #require(try cli.run(ip, arguments, environment: cli.environment, within: 60))
            try #require(r.status == 0, "ip \(arguments.joined(separator: " ")): \(r.err)")
            return r
        }

        /// The test guest serving its web page at 10.0.2.15 on `mode`.
        func guest(_ name: String, mode: String, mac: String = "52:54:00:00:00:42", command: String = "serve") throws -> String {
            // A file: the command has blanks, which vm_qemu_params would split.
            try s.write(name + ".cmd", command)
            // The mode on line 8, where the bridge test's refusal names it.
            return try lab.networkedVM(name, """
                vm_networking_iface1_mac=\(mac)
                vm_networking_iface1_mode=\(mode)
                vm_qemu_params='-usbdevice tablet -fw_cfg name=opt/vmtools/cmd,file=\(s.url(name + ".cmd"))'
                """)
        }

        /// The peer's HTTP GET of the guest's page.
        func fetchFromPeer() throws -> String {
            try cli.run(ip, ["netns", "exec", peer, "curl", "-s", "-m", "10", "http://10.0.2.15/"], environment: cli.environment, within: 30)?.out ?? ""
        }

        /// Stops a guest the test is done with (the lab's end fails a test
        /// that leaves one running).
        func stop(_ home: String) throws {
            _ = try cli.run("vmdown", ["-k", "--", home])
        }
    }

    /// The routed model: a tap in one namespace, the host routing it to a
    /// peer namespace, which reaches the guest's web server.
    @Test(.requiresGuest, .requiresRoot, .requires("ip", "curl")) func aTapRoutedByTheHostReachesAnotherNamespace() throws {
        guard let lab = try Net() else { return }
        try lab.must(["-n", lab.vm, "tuntap", "add", "dev", "tap0", "mode", "tap"])
        try lab.must(["-n", lab.vm, "addr", "add", "10.0.2.1/24", "dev", "tap0"])
        try lab.must(["-n", lab.vm, "link", "set", "tap0", "up"])
        try lab.set(lab.vm, "net/ipv4/conf/tap0/proxy_arp")
        let home = try lab.guest("routed", mode: "tap:tap0")
        let up = try #require(try lab.cli.run(lab.ip, ["netns", "exec", lab.vm, lab.cli.bin + "/vmup", home], environment: lab.cli.environment, within: 120))
        try #require(up.status == 0, "\(up.err)")
        #expect(waitUntil(90) { textIfPresent(home + "/serial.log").contains("VMTOOLS-GUEST: SERVING 1") }, "\(textIfPresent(home + "/serial.log"))")
        #expect(try lab.fetchFromPeer().contains("vmtools guest web"))
        try lab.stop(home)
    }

    /// The bridge model: the guest on br0 through qemu-bridge-helper, the
    /// ACL in a private /etc (an overlay in a mount namespace).
    @Test(.requiresGuest, .requiresRoot, .requires("ip", "curl", "unshare")) func guestsOnABridgeReachEachOtherAndTheHost() throws {
        guard let lab = try Net() else { return }
        try lab.must(["-n", lab.vm, "link", "add", "br0", "type", "bridge"])
        try lab.must(["-n", lab.vm, "addr", "add", "10.0.2.1/24", "dev", "br0"])
        try lab.must(["-n", lab.vm, "link", "set", "br0", "up"])
        try lab.set(lab.vm, "net/ipv4/conf/br0/proxy_arp")
        let home = try lab.guest("bridged", mode: "bridge:br0")
        try lab.s.mkdir("etc-upper/qemu")
        try lab.s.mkdir("etc-work")
        try lab.s.write("etc-upper/qemu/bridge.conf", "allow br0\n")
        // Without the ACL's line the start fails, saying what to add.
        try lab.s.write("etc-upper/qemu/bridge.conf", "allow br1\n")
        let script = "mount -t overlay overlay -o lowerdir=/etc,upperdir=\"$1\",workdir=\"$2\" /etc && shift 2 && exec \"$@\""
        func vmup() throws -> CLI.Result {
            try #require(try lab.cli.run(lab.ip, ["netns", "exec", lab.vm, "unshare", "-m", "sh", "-c", script, "sh",
                                                 lab.s.url("etc-upper"), lab.s.url("etc-work"), lab.cli.bin + "/vmup", home],
                                         environment: lab.cli.environment, within: 120))
        }
        let refused = try vmup()
        #expect(refused.status != 0 && refused.err.contains("vm_networking_iface1_mode: 'bridge:br0' (from \(home)/vm.settings:8): /etc/qemu/bridge.conf does not allow bridge br0: as root add the line 'allow br0' to /etc/qemu/bridge.conf"), "\(refused.err)")
        try lab.s.write("etc-upper/qemu/bridge.conf", "allow br0\n")
        let up = try vmup()
        try #require(up.status == 0, "\(up.err)")
        #expect(waitUntil(90) { textIfPresent(home + "/serial.log").contains("VMTOOLS-GUEST: SERVING 1") }, "\(textIfPresent(home + "/serial.log"))")
        #expect(try lab.fetchFromPeer().contains("vmtools guest web"))
        // A second guest on the same bridge reaches the first.
        let second = try lab.guest("second", mode: "bridge:br0", mac: "52:54:00:00:00:43", command: "peer 10.0.2.16 10.0.2.15")
        let up2 = try #require(try lab.cli.run(lab.ip, ["netns", "exec", lab.vm, "unshare", "-m", "sh", "-c", script, "sh",
                                                          lab.s.url("etc-upper"), lab.s.url("etc-work"), lab.cli.bin + "/vmup", second],
                                                  environment: lab.cli.environment, within: 120))
        try #require(up2.status == 0, "\(up2.err)")
        #expect(waitUntil(120) { textIfPresent(second + "/serial.log").contains("VMTOOLS-GUEST: FETCHED ") }, "\(textIfPresent(second + "/serial.log"))")
        #expect(textIfPresent(second + "/serial.log").contains("VMTOOLS-GUEST: FETCHED vmtools guest web"), "\(textIfPresent(second + "/serial.log"))")
        // The machine's /etc never saw the ACL.
        #expect(textIfPresent("/etc/qemu/bridge.conf") != "allow br0\n")
        try lab.stop(second)
        try lab.stop(home)
    }
}
