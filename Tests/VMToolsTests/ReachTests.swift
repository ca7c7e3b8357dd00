import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// Reaching the guest (vmup(1) -w, ssh.config; vm_networking_ifaceN_forward):
/// the test guest's `serve` command puts a web page on port 80 and an
/// `SSH-2.0-` banner on port 22. One boot for every check of a running guest.
@Suite(.serialized) struct ReachTests {
    /// One HTTP/1.0 GET on loopback; the whole reply.
    static func httpGet(port: Int) -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = in_port_t(UInt16(port).bigEndian)
        sa.sin_addr.s_addr = inet_addr("127.0.0.1")
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let ok = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard ok == 0 else { return "" }
        _ = "GET / HTTP/1.0\r\n\r\n".withCString { write(fd, $0, strlen($0)) }
        var reply: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fd, &buf, buf.count)
            guard n > 0 else { break }
            reply += buf[..<n]
        }
        return String(decoding: reply, as: UTF8.self)
    }

    @Test(.requiresGuest, .requires("ss")) func forwardsAreReachedShownAndWaitedFor() throws {
        guard let lab = try BootLab.guest(needing: "ss") else { return }
        let home = try lab.networkedVM("web", """
            vm_networking_iface1_forward=tcp::22
            vm_qemu_params='-usbdevice tablet -fw_cfg name=opt/vmtools/cmd,string=serve'
            """)
        // The web server's forward is added by a setting, beside the SSH one the file has.
        let up = try lab.cli.run("vmup", ["-w", "-o", "vm_networking_iface1_forward=tcp::22 tcp:0:80", home])
        try #require(up.status == 0, "\(up.err)\n\(textIfPresent(home + "/serial.log"))")
        #expect(textIfPresent(home + "/serial.log").contains("VMTOOLS-GUEST: SERVING 1"))

        let ps = try lab.cli.run("vmps", ["-j", "-d", home])
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(ps.out.utf8)) as? [[String: Any]])
        let forwards = try #require(doc.first?["forwards"] as? [[String: Any]], "\(ps.out)")
        #expect(forwards.map { $0["guest_port"] as? Int } == [22, 80])
        #expect(forwards.allSatisfy { $0["host_address"] as? String == "127.0.0.1" && $0["protocol"] as? String == "tcp" && $0["nic"] as? String == "1" })
        let sshPort = try #require(forwards[0]["host_port"] as? Int)
        let webPort = try #require(forwards[1]["host_port"] as? Int)
        #expect(sshPort > 0 && webPort > 0 && sshPort != webPort)
        #expect(up.err.contains("NOTICE: web: forwarding tcp:127.0.0.1:\(sshPort)->22"), "\(up.err)")
        #expect(up.err.contains("NOTICE: web: ssh -F \(home)/ssh.config -- web"), "\(up.err)")
        let psText = try lab.cli.run("vmps", ["-r", "-o", "nf", "-d", home])
        #expect(psText.out == "web  tcp:127.0.0.1:\(sshPort)->22 tcp:127.0.0.1:\(webPort)->80\n")

        // The guest's web server, through the kernel-chosen port.
        #expect(Self.httpGet(port: webPort).contains("vmtools guest web"))
        #expect(GuestWait.hasSSHBanner(address: "127.0.0.1", port: sshPort, timeout: 5))

        // Both listen on loopback only.
        let ss = try Subprocess(requireTool("ss") ?? "ss", ["-ltnH"]).run().stdoutText
        for port in [sshPort, webPort] {
            let lines = ss.split(separator: "\n").filter { $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst(3).first?.hasSuffix(":\(port)") == true }
            #expect(lines.count == 1 && lines[0].contains("127.0.0.1:\(port) "), "\(ss)")
        }

        let config = textIfPresent(home + "/ssh.config")
        #expect(config.contains("Host web\n  HostName 127.0.0.1\n  Port \(sshPort)\n  UserKnownHostsFile \(home)/known_hosts\n"), "\(config)")
        let mode = try FileManager.default.attributesOfItem(atPath: home + "/ssh.config")[.posixPermissions] as? Int
        #expect(mode == 0o600)

        let info = try lab.cli.run("vminfo", ["-i", home])
        #expect(info.out.contains("Forward: tcp:127.0.0.1:\(webPort)->80\nSSH: ssh -F \(home)/ssh.config -- web\n"), "\(info.out)")
        let infoJSON = try lab.cli.run("vminfo", ["-j", home])
        let state = try #require((try JSONSerialization.jsonObject(with: Data(infoJSON.out.utf8)) as? [[String: Any]])?.first?["state"] as? [String: Any])
        #expect((state["forwards"] as? [[String: Any]])?.compactMap { $0["host_port"] as? Int } == [sshPort, webPort])
        #expect(state["ssh"] as? String == "ssh -F \(home)/ssh.config -- web")

        let down = try lab.cli.run("vmdown", [home])
        #expect(down.status == 0, "\(down.err)")
        #expect(lab.pid(home) == nil)
    }

    /// Nothing answers on port 22 (no guest system at all): -w gives up after
    /// cfg_limit_waitguest, names the address, and leaves QEMU running.
    @Test(.requiresGuest) func theWaitTimesOutAndTheVMKeepsRunning() throws {
        guard let lab = try BootLab.guest(needing: "ss") else { return }
        try lab.s.write("mute/vm.settings", "vm_name=mute\nvm_boot_order=n\nvm_networking_iface1_enable=yes\nvm_networking_iface1_forward=tcp::22\n")
        let home = lab.s.url("mute")
        let up = try lab.cli.run("vmup", ["-w", "-o", "cfg_limit_waitguest=2", home])
        #expect(up.status == 1)
        let pid = try #require(lab.pid(home), "\(up.err)")
        let port = try #require(Int(textIfPresent(home + "/ssh.config").split(separator: "\n").first { $0.hasPrefix("  Port ") }?.dropFirst(7) ?? ""))
        #expect(up.err.contains("vmup: ERROR: \(home): the guest's SSH server did not answer on 127.0.0.1:\(port) within 2 s (cfg_limit_waitguest); the VM keeps running"), "\(up.err)")
        #expect(QemuProcess.read(pid: pid) != nil)
        kill(pid, SIGKILL)
        #expect(waitUntil(10) { QemuProcess.read(pid: pid) == nil })
    }
}
