import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch

/// passt's forwards without booting (vm.settings(5), `passt`; vmup(1)):
/// port 0 and the implicit SSH forward, the ports the executor picks, the
/// record vminfo reads, and a wait for SSH that works through passt.
@Suite struct PasstTests {
    let build = BuildCmdTests()

    /// A port-0 forward and cloud-init's implicit SSH forward go to a passt
    /// interface as to a user-mode one; the executor picks free ports.
    @Test func passtTakesPortZeroForwardsAndTheExecutorPicksThem() throws {
        let s = Scratch()
        try s.writeScript("bin/passt", "#!/bin/sh\nexit 0\n")
        try s.mkdir("vm")
        let values = ["vm_networking_iface1_enable": "yes", "vm_networking_iface1_mac": "52:54:00:00:00:01",
                      "vm_networking_iface1_mode": "passt", "vm_networking_iface1_forward": "tcp::80 udp:0:53"]
        let c = try build.command(s, values, home: s.url("vm"), environment: ["PATH": s.url("bin")])
        #expect(c.plan.preview.helpers.first?.arguments.suffix(4) == ["-t", "127.0.0.1/0:80", "-u", "127.0.0.1/0:53"])
        #expect(c.plan.otherDryRunLines.contains("would choose a free tcp port on 127.0.0.1 for the forward to guest port 80"), "\(c.plan.otherDryRunLines)")
        let implicit = try NetworkingModule.forwards(VMSettings(c.settings), implicitSSH: true)
        #expect(implicit["1"]?.last == .implicitSSH)

        var executor = try build.executor(s, c)
        try executor.choosePorts()
        let chosen = executor.plan.helperForwards.map(\.forward.hostPort)
        #expect(chosen.allSatisfy { $0 > 0 }, "\(chosen)")
        #expect(executor.plan.helpers.first?.arguments.suffix(4) == ["-t", "127.0.0.1/\(chosen[0]):80", "-u", "127.0.0.1/\(chosen[1]):53"])
    }

    /// vminfo and vmps find passt's forwards in the record the executor
    /// wrote beside its socket, named by QEMU's -netdev stream.
    @Test func passtForwardsAreReadFromTheRecord() throws {
        let s = Scratch()
        let socket = s.url("vm/passt-nd2.sock")
        try s.write("vm/passt-nd2.forwards", "tcp:127.0.0.1:4022->22\nudp:0.0.0.0:5353->53\n")
        let p = QemuProcess(pid: 1, uid: 0, argv: ["qemu-system-x86_64", "-netdev", "stream,server=off,addr.type=unix,addr.path=\(socket),id=nd2"], vszKB: 0, cpuPercent: 0)
        #expect(p.hasForwards)
        #expect(p.liveForwards(home: s.url("vm")) == [LiveForward(nic: "2", proto: "tcp", address: "127.0.0.1", hostPort: 4022, guestPort: 22),
                                                      LiveForward(nic: "2", proto: "udp", address: "0.0.0.0", hostPort: 5353, guestPort: 53)])
        try FileManager.default.removeItem(atPath: s.url("vm/passt-nd2.forwards"))
        #expect(p.liveForwards(home: s.url("vm")) == nil)
    }

    /// Debian 12's passt completes the guest's TCP handshake only once the
    /// host side sends: the wait sends a client's identification first.
    @Test func theSSHWaitSpeaksFirst() throws {
        let ssh = try ForwardSettingsTests.Listener(banner: "SSH-2.0-OpenSSH_9.2\r\n", afterClientSpeaks: true)
        #expect(GuestWait.hasSSHBanner(address: "127.0.0.1", port: ssh.port, timeout: 2))
        #expect(ssh.heard.hasPrefix("SSH-2.0-"), "\(ssh.heard)")
    }

    /// A passt that gives up (no host interface with a default route) fails
    /// the start at once with its last message, and QEMU never starts.
    @Test(.requires("qemu-system-x86_64")) func aPasstThatExitsFailsTheStartWithItsMessage() throws {
        let lab = try BootLab(config: "vm_display_type=none\nvm_ram_size=128M\n")
        let s = lab.s, cli = lab.cli
        try s.writeScript("fake/passt", "#!/bin/sh\necho 'No external routable interface for IPv4' >&2\necho 'External interface not usable' >&2\nexit 1\n")
        try s.write("vm/vm.settings", "vm_name=vm\nvm_networking_iface1_enable=yes\nvm_networking_iface1_mode=passt\n")
        let start = Date()
        let up = try cli.run("vmup", [s.url("vm")], env: ["PATH": s.url("fake") + ":/usr/local/bin:/usr/bin:/bin"])
        #expect(up.status == 1)
        #expect(up.err.contains("vmup: ERROR: \(s.url("fake/passt")): exited with status 1 before making its socket \(s.url("vm/passt-nd1.sock")): External interface not usable"), "\(up.err)")
        #expect(Date().timeIntervalSince(start) < 8)
        #expect(!FileManager.default.fileExists(atPath: s.url("vm/qemu.pid")))
        #expect(!FileManager.default.fileExists(atPath: s.url("vm/passt-nd1.log")))
    }

    /// passt's numbered files are one boot's (vmfix(1) -d): removed after a
    /// crash (and not carried by vmmv across filesystems); look-alikes stay.
    @Test func passtFilesAreRunTimeFiles() throws {
        let s = Scratch()
        let cli = try CLI(s)
        try s.write("vm/vm.settings", "vm_name=p\n")
        let passt = ["passt-nd1.sock", "passt-nd1.log", "passt-nd12.forwards"]
        let kept = ["passt-nd.log", "passt-ndx.sock", "passt-nd1.log.txt", "notes-passt-nd1.log"]
        for f in passt + kept { try s.write("vm/\(f)", "x") }
        #expect(passt.allSatisfy(VMFileNames.isNumberedWork) && !kept.contains(where: VMFileNames.isNumberedWork))
        let r = try cli.run("vmfix", ["-d", s.url("vm")])
        #expect(r.err.contains(s.url("vm/passt-nd12.forwards")), "\(r.err)")
        #expect(passt.allSatisfy { !s.exists("vm/\($0)") } && kept.allSatisfy { s.exists("vm/\($0)") })
    }
}
