import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// The passt network model booted (vm.settings(5), `passt`): forwards reach
/// the test guest's `serve` page and SSH banner through passt, vmup prints
/// them and writes ssh.config, and no passt outlives its QEMU.
@Suite(.serialized) struct PasstBootTests {
    final class Lab {
        let s = Scratch()
        let cli: CLI

        init?() throws {
            guard Guest.build() != nil, requireTool("passt") != nil else { return nil }
            cli = try CLI(s)
            try s.write("etc/vmtools.conf", "vm_display_type=none\nvm_ram_size=128M\nvm_cpu_count=1\nvm_qemu_shutdown_timeout=30\nvm_serial_log=yes\n")
        }

        /// A VM home whose guest serves a page on port 80 and a banner on 22.
        func home(_ name: String) throws -> String {
            try s.write("\(name)/vm.settings", """
                vm_name=\(name)
                vm_boot_order=d
                vm_storage_cdrom1_enable=yes
                vm_storage_cdrom1_backend=\(Guest.iso)
                vm_networking_iface1_enable=yes
                vm_networking_iface1_device=virtio-net-pci
                vm_networking_iface1_mode=passt
                vm_qemu_params='-fw_cfg name=opt/vmtools/cmd,string=serve'
                """)
            // Raw QEMU syntax in a VM's own file: the user accepts it (vm.settings(5), HOST PATHS).
            try #require(try cli.run("vmfix", ["-H", s.url(name)]).status == 3)
            return s.url(name)
        }

        /// passt processes this test started: their command line names a
        /// socket in the scratch directory (an exited one's is empty).
        var passts: [Int32] {
            ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry in
                guard let pid = Int32(entry), let raw = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { return nil }
                let argv = raw.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
                guard argv.first?.split(separator: "/").last?.hasPrefix("passt") == true,
                      argv.contains(where: { $0.hasPrefix(s.path) }) else { return nil }
                return pid
            }
        }

        func passtFiles(_ home: String) -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: home)) ?? []).filter { $0.hasPrefix("passt-") }.sorted()
        }

        deinit {
            for p in QemuProcess.all() where p.argv.contains(where: { $0.contains(s.path) }) { kill(p.pid, SIGKILL) }
            for pid in passts { kill(pid, SIGKILL) }
        }
    }

    /// The host port of the forward to `guestPort` in vmup's notices.
    static func port(_ err: String, vm: String, guestPort: Int) -> Int? {
        err.split(separator: "\n").lazy.compactMap { line -> Int? in
            guard let r = line.range(of: "NOTICE: \(vm): forwarding tcp:127.0.0.1:"), line.hasSuffix("->\(guestPort)") else { return nil }
            return Int(line[r.upperBound...].prefix { $0.isNumber })
        }.first
    }

    @Test(.requiresGuest, .requires("passt")) func forwardsReachTheGuestThroughPasst() throws {
        guard let lab = try Lab() else { return }
        let home = try lab.home("web")
        // Both from port 0: the executor picks them, as slirp's kernel would.
        let up = try lab.cli.run("vmup", ["-w", "-o", "vm_networking_iface1_forward=tcp::22 tcp:0:80", home])
        try #require(up.status == 0, "\(up.err)\n\(textIfPresent(home + "/serial.log"))")
        #expect(textIfPresent(home + "/serial.log").contains("VMTOOLS-GUEST: SERVING 1"))
        let sshPort = try #require(Self.port(up.err, vm: "web", guestPort: 22), "\(up.err)")
        let webPort = try #require(Self.port(up.err, vm: "web", guestPort: 80), "\(up.err)")
        #expect(sshPort > 0 && webPort > 0 && sshPort != webPort)
        #expect(up.err.contains("NOTICE: web: ssh -F \(home)/ssh.config -- web"), "\(up.err)")
        #expect(!up.err.contains("UNIX domain socket"), "passt's chatter goes to its log: \(up.err)")
        #expect(lab.passts.count == 1)

        #expect(ReachTests.httpGet(port: webPort).contains("vmtools guest web"))
        // The guest answers one connection at a time, slowly under a loaded TCG.
        #expect(waitUntil(60) { GuestWait.hasSSHBanner(address: "127.0.0.1", port: sshPort, timeout: 5) })
        #expect(textIfPresent(home + "/ssh.config").contains("Host web\n  HostName 127.0.0.1\n  Port \(sshPort)\n"))
        for file in ["passt-nd1.forwards", "passt-nd1.log", "passt-nd1.sock"] {
            let mode = try FileManager.default.attributesOfItem(atPath: home + "/" + file)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(file)")
        }

        let info = try lab.cli.run("vminfo", ["-i", home])
        #expect(info.out.contains("Forward: tcp:127.0.0.1:\(sshPort)->22\nForward: tcp:127.0.0.1:\(webPort)->80\nSSH: ssh -F \(home)/ssh.config -- web\n"), "\(info.out)")
        let ps = try lab.cli.run("vmps", ["-r", "-o", "nf", "-d", home])
        #expect(ps.out == "web  tcp:127.0.0.1:\(sshPort)->22 tcp:127.0.0.1:\(webPort)->80\n", "\(ps.out)")

        let down = try lab.cli.run("vmdown", [home])
        #expect(down.status == 0, "\(down.err)")
        #expect(waitUntil(10) { lab.passts.isEmpty }, "\(lab.passts)")
        #expect(lab.passtFiles(home) == [])
    }

    /// A killed QEMU closes passt's one connection: passt ends with it.
    @Test(.requiresGuest, .requires("passt")) func vmdownKillEndsPasstToo() throws {
        guard let lab = try Lab() else { return }
        let home = try lab.home("kill")
        let up = try lab.cli.run("vmup", ["-o", "vm_networking_iface1_forward=tcp:0:80", home])
        try #require(up.status == 0, "\(up.err)")
        #expect(Self.port(up.err, vm: "kill", guestPort: 80) != nil, "\(up.err)")
        #expect(lab.passts.count == 1)
        let down = try lab.cli.run("vmdown", ["-k", home])
        #expect(down.status == 0, "\(down.err)")
        #expect(waitUntil(10) { lab.passts.isEmpty }, "\(lab.passts)")
        #expect(lab.passtFiles(home) == [])
    }

    /// QEMU that fails right after its start never connects to passt:
    /// vmup stops passt itself and leaves none of its files.
    @Test(.requiresGuest, .requires("passt")) func aQEMUThatFailsToStartTakesPasstWithIt() throws {
        guard let lab = try Lab() else { return }
        let home = try lab.home("bad")
        let up = try lab.cli.run("vmup", ["-o", "vm_qemu_params=-no-such-option", "-o", "vm_networking_iface1_forward=tcp:0:80", home])
        #expect(up.status == 1)
        #expect(up.err.contains("vmup: ERROR: \(home): QEMU failed to start"), "\(up.err)")
        #expect(lab.passts.isEmpty, "\(lab.passts)")
        #expect(lab.passtFiles(home) == [])
    }
}
