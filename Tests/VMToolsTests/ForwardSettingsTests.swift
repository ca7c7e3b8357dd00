import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// `vm_networking_ifaceN_forward`, the forwards read back from QEMU,
/// ssh.config and `vmup -w`'s banner check, without booting a guest.
@Suite struct ForwardSettingsTests {
    func vm(_ values: [String: String]) -> VMSettings {
        var t = SettingsTable()
        t.set("vm_networking_default_mode", "user", .builtin)
        for (k, v) in values { t.set(k, v, .commandLine("-o")) }
        return VMSettings(t)
    }

    @Test func parsesEveryFormOfAForward() {
        #expect(PortForward.parse("tcp:8080:80") == PortForward(.tcp, hostPort: 8080, guestPort: 80))
        #expect(PortForward.parse("udp:127.0.0.1:5353:53") == PortForward(.udp, hostPort: 5353, guestPort: 53))
        #expect(PortForward.parse("tcp:0.0.0.0:2222:22") == PortForward(.tcp, address: "0.0.0.0", hostPort: 2222, guestPort: 22))
        #expect(PortForward.parse("tcp::22") == PortForward(.tcp, guestPort: 22))
        #expect(PortForward.parse("8080:80") == PortForward(.tcp, hostPort: 8080, guestPort: 80))
        #expect(PortForward.parse(":22") == PortForward(.tcp, guestPort: 22))
        #expect(PortForward.parse("22") == PortForward(.tcp, guestPort: 22))
        #expect(PortForward.parse("tcp:0:22")?.hostfwd == "hostfwd=tcp:127.0.0.1:0-:22")
        for bad in ["", "tcp:", "tcp:80:0", "tcp:70000:22", "sctp:1:2", "web:80:80", "tcp:localhost:80:80", "1:2:3:4:5", "tcp:-1:22", "tcp:8080:"] {
            #expect(PortForward.parse(bad) == nil, "\(bad)")
        }
    }

    @Test func aBadForwardOrAForwardOnABridgeNamesTheSetting() {
        let bad = expectError { _ = try vm(["vm_networking_iface1_enable": "yes", "vm_networking_iface1_forward": "tcp:8080:80 http"]).nic("1").forwards() }
        #expect(bad?.description == "vm_networking_iface1_forward: 'tcp:8080:80 http' (from command line (-o)): 'http' is not [tcp:|udp:][ADDR:][HOSTPORT]:GUESTPORT (ADDR an IPv4 address, ports 0-65535)")
        let bridge = expectError {
            _ = try vm(["vm_networking_iface2_enable": "yes", "vm_networking_iface2_mode": "bridge,br=br0", "vm_networking_iface2_forward": "tcp::22"]).nic("2").forwards()
        }
        #expect(bridge?.description == "vm_networking_iface2_forward: 'tcp::22' (from command line (-o)): forwards need a user-mode interface (vm_networking_iface2_mode is 'bridge,br=br0')")
        #expect((try? vm(["vm_networking_iface1_forward": ""]).nic("1").forwards()) == [])
    }

    @Test func forwardsGoOnTheirInterfacesNetdevAndOnLoopback() throws {
        let s = Scratch()
        let c = try BuildCmdTests().command(s, [
            "vm_networking_iface1_enable": "yes", "vm_networking_iface1_mac": "52:54:00:00:00:01",
            "vm_networking_iface1_forward": "tcp::22 udp:5353:53",
            "vm_networking_iface2_enable": "yes", "vm_networking_iface2_mac": "52:54:00:00:00:02",
            "vm_networking_iface2_mode": "user,hostfwd=tcp::2222-:22", "vm_networking_iface2_forward": "tcp:0.0.0.0:8080:80",
        ], home: s.url("web"))
        let netdevs = c.argv.indices.filter { c.argv[$0] == "-netdev" }.map { c.argv[$0 + 1] }
        #expect(netdevs == ["user,hostfwd=tcp:127.0.0.1:0-:22,hostfwd=udp:127.0.0.1:5353-:53,id=nd1",
                            "user,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=tcp:0.0.0.0:8080-:80,id=nd2"])
        #expect(c.plan.readBack.suffix(1) == [.forwards(ssh: LaunchPlan.SSHPlan(name: "", home: s.url("web"), user: "", identityFile: nil, instanceID: ""))])
        #expect(c.plan.forwardsSSH)
        #expect(c.plan.otherDryRunLines.suffix(2) == ["would ask QEMU over QMP which host ports its forwards took", "would write \(s.url("web"))/ssh.config"])
        // A forward on an interface that is off is not planned; no forward, nothing to read back.
        let off = try BuildCmdTests().command(s, ["vm_networking_iface1_enable": "no", "vm_networking_iface1_forward": "tcp::22"])
        #expect(!off.argv.contains { $0.contains("hostfwd") } && off.plan.readBack.isEmpty && !off.plan.forwardsSSH)
    }

    @Test func theSameFixedHostPortTwiceIsRefused() {
        let e = expectError {
            _ = try NetworkingModule.forwards(vm([
                "vm_networking_iface1_enable": "yes", "vm_networking_iface1_forward": "tcp:8080:80",
                "vm_networking_iface2_enable": "yes", "vm_networking_iface2_forward": "tcp:127.0.0.1:8080:81 tcp:0:82 tcp:0:83",
            ]), implicitSSH: false)
        }
        #expect(e?.subject == "vm_networking_iface2_forward" && e?.message.hasSuffix("host port tcp:127.0.0.1:8080 is forwarded twice") == true)
    }

    /// With cloud-init on: SSH on the first user-mode interface, unless a
    /// forward to guest port 22 is there already.
    @Test func theImplicitSSHForwardGoesOnTheFirstUserModeInterfaceOnce() throws {
        #expect(try vm(["vm_cloudinit_enable": "auto"]).wantsSSHForward() == false)
        #expect(try vm(["vm_cloudinit_enable": "no", "vm_cloudinit_user": "ann"]).wantsSSHForward() == false)
        #expect(try vm(["vm_cloudinit_enable": "auto", "vm_cloudinit_user": "ann"]).wantsSSHForward())
        let two = vm(["vm_networking_iface1_enable": "yes", "vm_networking_iface1_mode": "bridge,br=br0",
                      "vm_networking_iface2_enable": "yes", "vm_networking_iface2_forward": "tcp:8080:80"])
        #expect(try NetworkingModule.forwards(two, implicitSSH: true) == ["1": [], "2": [PortForward(.tcp, hostPort: 8080, guestPort: 80), .implicitSSH]])
        #expect(try NetworkingModule.forwards(two, implicitSSH: false)["2"] == [PortForward(.tcp, hostPort: 8080, guestPort: 80)])
        let own = vm(["vm_networking_iface1_enable": "yes", "vm_networking_iface1_forward": "tcp:2222:22"])
        #expect(try NetworkingModule.forwards(own, implicitSSH: true) == ["1": [PortForward(.tcp, hostPort: 2222, guestPort: 22)]])
        let legacy = vm(["vm_networking_iface1_enable": "yes", "vm_networking_iface1_mode": "user,hostfwd=tcp::2222-:22"])
        #expect(try NetworkingModule.forwards(legacy, implicitSSH: true) == ["1": []])
    }

    @Test func readsTheRealPortsFromInfoUsernet() {
        let text = "Hub -1 (nd1):\r\n  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\r\n"
            + "  TCP[HOST_FORWARD]  12       127.0.0.1 34313       10.0.2.15    22     0     0\r\n"
            + "  UDP[HOST_FORWARD]  11       127.0.0.1 58004       10.0.2.15    53     0     0\r\n"
            + "  TCP[ESTABLISHED]   30       127.0.0.1 34313       10.0.2.15    22     0     0\r\n"
            + "Hub -1 (nd10):\r\n  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\r\n"
            + "  TCP[HOST_FORWARD]  13               * 8080       10.0.2.15    80     0     0\r\n"
        #expect(LiveForward.parse(usernet: text) == [
            LiveForward(nic: "1", proto: "tcp", address: "127.0.0.1", hostPort: 34313, guestPort: 22),
            LiveForward(nic: "1", proto: "udp", address: "127.0.0.1", hostPort: 58004, guestPort: 53),
            LiveForward(nic: "10", proto: "tcp", address: "0.0.0.0", hostPort: 8080, guestPort: 80),
        ])
        #expect(LiveForward.parse(usernet: text).last?.description == "tcp:0.0.0.0:8080->80")
        #expect(LiveForward.parse(usernet: text).last?.connectAddress == "127.0.0.1")
    }

    @Test func sshConfigIsPrivateAndKnownHostsIsResetForANewInstance() throws {
        let s = Scratch()
        try s.mkdir("my vm")
        let home = s.url("my vm")
        var config = SSHConfig(name: "web", home: home, address: "127.0.0.1", port: 34313, user: "ann",
                               identityFile: "/home/ann/.ssh/id_ed25519", instanceID: "i-1")
        try config.write()
        #expect(textIfPresent(home + "/ssh.config") == """
            # vmtools: instance i-1
            Host web
              HostName 127.0.0.1
              Port 34313
              User ann
              IdentityFile /home/ann/.ssh/id_ed25519
              UserKnownHostsFile "\(home)/known_hosts"
              StrictHostKeyChecking accept-new

            """)
        for f in ["ssh.config", "known_hosts"] {
            let mode = try FileManager.default.attributesOfItem(atPath: home + "/" + f)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(f)")
        }
        // The same instance on another port keeps the guest's host key.
        _ = try s.write("my vm/known_hosts", "[127.0.0.1]:34313 ssh-ed25519 AAAA\n")
        config.port = 40000
        try config.write()
        #expect(textIfPresent(home + "/known_hosts") == "[127.0.0.1]:34313 ssh-ed25519 AAAA\n")
        #expect(textIfPresent(home + "/ssh.config").contains("  Port 40000\n"))
        // A clone boots as a new instance, with new host keys.
        config.instanceID = "i-2"
        try config.write()
        #expect(textIfPresent(home + "/known_hosts") == "")
        // No user, no key: the lines are left out; a name ssh cannot hold gets a safe alias (SSHConfigTests).
        let bare = SSHConfig(name: "db", home: "/vms/db", address: "127.0.0.1", port: 2222, user: "", identityFile: nil, instanceID: "")
        #expect(bare.text == "# vmtools: instance -\nHost db\n  HostName 127.0.0.1\n  Port 2222\n  UserKnownHostsFile /vms/db/known_hosts\n  StrictHostKeyChecking accept-new\n")
        #expect(SSHConfig(name: "a\"b", home: "/vms/x", address: "127.0.0.1", port: 1, user: "", identityFile: nil, instanceID: "").text?
            .contains("Host \(SSHConfig.alias("a\"b"))\n") == true)
        #expect(SSHConfig.command(home: "/vms/my web", name: "my web") == "ssh -F '/vms/my web/ssh.config' -- \(SSHConfig.alias("my web"))")
    }

    @Test func theIdentityFileIsThePrivateKeyBesideTheConfiguredPublicKey() throws {
        let s = Scratch()
        let pub = try s.write("keys/id_ed25519.pub", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f ann\n")
        let settings = ["vm_cloudinit_enable": "auto", "vm_cloudinit_sshkey": pub, "vm_cloudinit_user": "ann"]
        #expect(try vm(settings).sshLogin(home: nil, environment: [:]).identityFile == nil, "no private key beside it")
        let key = try s.write("keys/id_ed25519", "private\n")
        #expect(try vm(settings).sshLogin(home: nil, environment: [:]).identityFile == key)
        #expect(try vm(settings).sshLogin(home: nil, environment: [:]).user == "ann")
    }

    @Test func waitGuestIsAPositiveNumberOfSeconds() throws {
        #expect(try vm(["cfg_limit_waitguest": "300"]).waitGuestSeconds() == 300)
        let e = expectError { _ = try vm(["cfg_limit_waitguest": "0"]).waitGuestSeconds() }
        #expect(e?.description == "cfg_limit_waitguest: '0' (from command line (-o)): expected a number of seconds, at least 1")
    }

    /// A listener on a free loopback port; `banner` is written to each connection.
    final class Listener: @unchecked Sendable {
        let fd: Int32
        let port: Int
        /// What the last client sent first (with `afterClientSpeaks`).
        var heard: String { box.lock.withLock { box.text } }
        private final class Box: @unchecked Sendable {
            let lock = NSLock()
            var text = ""
        }
        private let box = Box()

        /// `afterClientSpeaks`: the banner only once the client has sent
        /// something, as a server behind Debian 12's passt sees it.
        init(banner: String?, afterClientSpeaks: Bool = false) throws {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            self.fd = fd
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_addr.s_addr = inet_addr("127.0.0.1")
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let ok = withUnsafeMutablePointer(to: &sa) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && listen(fd, 8) == 0 && getsockname(fd, $0, &len) == 0 }
            }
            guard ok else { throw VMToolsError(.failure, nil, "cannot listen") }
            port = Int(UInt16(bigEndian: sa.sin_port))
            let box = self.box
            Thread.detachNewThread {
                // This thread closes the socket once deinit has shut it down,
                // so it never accepts on a descriptor number reused meanwhile.
                defer { close(fd) }
                while true {
                    let c = accept(fd, nil, nil)
                    guard c >= 0 else { return }
                    if afterClientSpeaks {
                        var tv = timeval(tv_sec: 2, tv_usec: 0)
                        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                        var buf = [UInt8](repeating: 0, count: 256)
                        let n = read(c, &buf, buf.count)
                        guard n > 0 else { close(c); continue }
                        box.lock.withLock { box.text = String(decoding: buf[..<n], as: UTF8.self) }
                    }
                    if let banner { _ = banner.withCString { write(c, $0, strlen($0)) } }
                    // Without a banner: hold the connection open, as slirp does before the guest answers.
                    Thread.sleep(forTimeInterval: banner == nil ? 3 : 0)
                    close(c)
                }
            }
        }
        deinit { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    @Test func theWaitEndsOnAnSSHBannerAndNamesWhatWasNotReached() throws {
        let ssh = try Listener(banner: "SSH-2.0-OpenSSH_9.2\r\n")
        #expect(GuestWait.hasSSHBanner(address: "127.0.0.1", port: ssh.port, timeout: 2))
        let http = try Listener(banner: "HTTP/1.0 200 OK\r\n")
        #expect(!GuestWait.hasSSHBanner(address: "127.0.0.1", port: http.port, timeout: 2))
        let silent = try Listener(banner: nil)
        let console = Console(command: "vmup", out: OutputStream(fd: -1), err: OutputStream(fd: -1))
        let start = Date()
        let e = expectError { try GuestWait.waitForSSH(vm: "/vms/web", address: "127.0.0.1", port: silent.port, seconds: 1, console: console) }
        #expect(e?.description == "/vms/web: the guest's SSH server did not answer on 127.0.0.1:\(silent.port) within 1 s (cfg_limit_waitguest); the VM keeps running")
        #expect(Date().timeIntervalSince(start) < 5)
        try GuestWait.waitForSSH(vm: "/vms/web", address: "127.0.0.1", port: ssh.port, seconds: 5, console: console)
    }

    /// Progress is a dots line on stderr at a terminal, and nothing in a pipe.
    @Test func theWaitShowsProgressOnlyAtATerminal() throws {
        let silent = try Listener(banner: nil)
        // Glibc's Swift module lacks the pty calls (they need _XOPEN_SOURCE).
        let libc = dlopen(nil, RTLD_NOW)
        typealias IntCall = @convention(c) (Int32) -> Int32
        typealias NameCall = @convention(c) (Int32) -> UnsafeMutablePointer<CChar>?
        let openpt = unsafeBitCast(dlsym(libc, "posix_openpt"), to: IntCall.self)
        let grant = unsafeBitCast(dlsym(libc, "grantpt"), to: IntCall.self)
        let unlock = unsafeBitCast(dlsym(libc, "unlockpt"), to: IntCall.self)
        let name = unsafeBitCast(dlsym(libc, "ptsname"), to: NameCall.self)
        let master = openpt(O_RDWR | O_NOCTTY)
        try #require(master >= 0 && grant(master) == 0 && unlock(master) == 0)
        defer { close(master) }
        let path = try #require(name(master).map { String(cString: $0) })
        let slave = open(path, O_RDWR | O_NOCTTY)
        try #require(slave >= 0)
        defer { close(slave) }
        var pipeFDs: [Int32] = [0, 0]
        try #require(pipe(&pipeFDs) == 0)
        defer { close(pipeFDs[0]) }
        for (fd, terminal) in [(slave, true), (pipeFDs[1], false)] {
            let console = Console(command: "vmup", out: OutputStream(fd: -1), err: OutputStream(fd: fd))
            _ = expectError { try GuestWait.waitForSSH(vm: "web", address: "127.0.0.1", port: silent.port, seconds: 1, console: console) }
            if !terminal { close(fd) }
            let source = terminal ? master : pipeFDs[0]
            var text = ""
            var buf = [UInt8](repeating: 0, count: 4096)
            var pfd = pollfd(fd: source, events: Int16(POLLIN), revents: 0)
            while poll(&pfd, 1, 200) > 0, pfd.revents & Int16(POLLIN) != 0 {
                let n = read(source, &buf, buf.count)
                guard n > 0 else { break }
                text += String(decoding: buf[..<n], as: UTF8.self)
            }
            if terminal {
                #expect(text.contains("\rvmup: web: waiting for SSH on 127.0.0.1:\(silent.port) ."), "\(text)")
            } else {
                #expect(text == "", "\(text)")
            }
        }
    }

    @Test func vmupWaitNeedsAnSSHForward() throws {
        let s = Scratch()
        let cli = try CLI(s)
        _ = try s.write("vm/vm.settings", "vm_name=vm\nvm_networking_iface1_enable=yes\nvm_networking_iface1_forward=tcp:8080:80\n")
        let r = try cli.run("vmup", ["-n", "-w", s.url("vm")])
        #expect(r.status == 2, "\(r.err)")
        #expect(r.err.contains("vmup: ERROR: \(s.url("vm")): -w needs a forward to guest port 22 (vm_networking_ifaceN_forward, such as tcp::22)"), "\(r.err)")
        _ = try s.write("vm/vm.settings", "vm_name=vm\nvm_networking_iface1_enable=yes\nvm_networking_iface1_forward='tcp:8080:80 tcp::22'\n")
        let ok = try cli.run("vmup", ["-n", "-w", s.url("vm")])
        #expect(ok.status == 0, "\(ok.err)")
        #expect(ok.err.contains("would write \(s.url("vm"))/ssh.config"))
        #expect(try cli.run("vmup", ["-i", "-w", s.url("vm")]).status == 2)
        let bridge = try cli.run("vmup", ["-n", "-o", "vm_networking_iface1_mode=bridge", s.url("vm")])
        #expect(bridge.status == 1 && bridge.err.contains("vm_networking_iface1_forward: 'tcp:8080:80 tcp::22' (from \(s.url("vm"))/vm.settings:3): forwards need a user-mode interface"), "\(bridge.err)")
    }
}
