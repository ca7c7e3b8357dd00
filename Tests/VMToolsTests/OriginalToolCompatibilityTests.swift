import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// VMs the original shell tool started are listed and stopped too: the same
/// command-line anchors (absolute -pidfile, `-monitor unix:./monitor.sock,server,nowait`, -name).
@Suite struct OriginalToolCompatibilityTests {
    @Test(.requires("qemu-system-x86_64")) func seesAndStopsAQEMUStartedTheOriginalWay() throws {
        guard let qemu = requireTool("qemu-system-x86_64") else { return }
        let s = Scratch()
        let cli = try CLI(s)
        try s.write("old vm/vm.settings", "vm_name=old\n")
        let home = s.url("old vm")
        let r = try Subprocess(qemu, ["-machine", "none", "-nodefaults", "-pidfile", home + "/qemu.pid", "-daemonize", "-display", "none",
                                      "-monitor", "unix:./monitor.sock,server,nowait", "-name", "old,,vm"], workingDirectory: home).run()
        try #require(r.status == 0, "\(r.stderrText)")
        let pid = try #require(Int32(try s.read("old vm/qemu.pid").trimmingCharacters(in: .whitespacesAndNewlines)))
        defer { kill(pid, SIGKILL) }
        let ps = try cli.run("vmps", ["-r", "-o", "pnhq", "-d", home])
        #expect(ps.out == "\(pid)  old,vm  \(home)  \(home)/monitor.sock\n")
        let mon = try cli.run("vmmon", ["-c", "info name", home])
        #expect(mon.out.contains("old,vm"))
        // No QMP socket: vmdown uses the human monitor for ACPI (ignored here: no guest), then SIGTERM.
        try s.write("etc/vmtools.conf", "vm_qemu_shutdown_timeout=1\n")
        let down = try cli.run("vmdown", [home])
        #expect(down.status == 0, "\(down.err)")
        #expect(!s.exists("old vm/monitor.sock"), "vmdown leaves no socket behind")
        #expect(try cli.run("vmps", ["-d", home]).status == 3)
    }
}
