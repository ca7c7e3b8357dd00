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
    /// The lab, which also ends every passt of its tests that outlived them.
    static func lab(sourceLocation: SourceLocation = #_sourceLocation) throws -> BootLab? {
        guard let lab = try BootLab.guest(needing: "passt", sourceLocation: sourceLocation) else { return nil }
        lab.onEnd { lab in for pid in lab.passts { kill(pid, SIGKILL) } }
        return lab
    }

    /// A VM home on passt whose guest serves a page on port 80 and a banner on 22.
    static func home(_ lab: BootLab, _ name: String) throws -> String {
        try lab.networkedVM(name, "vm_networking_iface1_mode=passt\nvm_qemu_params='-fw_cfg name=opt/vmtools/cmd,string=serve'")
    }

    /// The host port of the forward to `guestPort` in vmup's notices.
    static func port(_ err: String, vm: String, guestPort: Int) -> Int? {
        err.split(separator: "\n").lazy.compactMap { line -> Int? in
            guard let r = line.range(of: "NOTICE: \(vm): forwarding tcp:127.0.0.1:"), line.hasSuffix("->\(guestPort)") else { return nil }
            return Int(line[r.upperBound...].prefix { $0.isNumber })
        }.first
    }

    @Test(.requiresGuest, .requires("passt")) func forwardsReachTheGuestThroughPasst() throws {
        guard let lab = try Self.lab() else { return }
        let home = try Self.home(lab, "web")
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
        guard let lab = try Self.lab() else { return }
        let home = try Self.home(lab, "kill")
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
        guard let lab = try Self.lab() else { return }
        let home = try Self.home(lab, "bad")
        let up = try lab.cli.run("vmup", ["-o", "vm_qemu_params=-no-such-option", "-o", "vm_networking_iface1_forward=tcp:0:80", home])
        #expect(up.status == 1)
        #expect(up.err.contains("vmup: ERROR: \(home): QEMU failed to start"), "\(up.err)")
        #expect(lab.passts.isEmpty, "\(lab.passts)")
        #expect(lab.passtFiles(home) == [])
    }
}

extension BootLab {
    /// passt processes this test started: their command line names a
    /// socket in the scratch directory (an exited one's is empty).
    fileprivate var passts: [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry in
            guard let pid = Int32(entry), let raw = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { return nil }
            let argv = raw.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            guard argv.first?.split(separator: "/").last?.hasPrefix("passt") == true,
                  argv.contains(where: { $0.hasPrefix(s.path) }) else { return nil }
            return pid
        }
    }

    fileprivate func passtFiles(_ home: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: home)) ?? []).filter { $0.hasPrefix("passt-") }.sorted()
    }
}
