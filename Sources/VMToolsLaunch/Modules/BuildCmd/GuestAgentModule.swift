import VMToolsCore

/// `guestagent`: the qemu-guest-agent channel (vm.settings(5), GUEST
/// AGENT), a virtio-serial port named as the agent expects, on its own
/// controller so it never depends on the display's vdagent port. QEMU listens
/// on `qga.sock` in the run directory (relative, as for `monitor`); vminfo
/// and vmps connect to it.
public enum GuestAgentModule: BuildCmdModule {
    public static let name = "guestagent"
    static let chardev = "qga0"
    static let controller = "qgaserial0"

    public static func build(_ c: inout QemuCommand) throws {
        guard try c.vm.guestAgentEnabled(), let dir = c.runDirectory else { return }
        let socket = VMFileNames.guestAgentSocket
        c.plan.machine.guestAgent = .init(socket: dir.appendingPathComponent(socket))
        MonitorModule.staleSocket(dir.appendingPathComponent(socket), &c)
        c.append("-chardev", "socket,id=\(chardev),path=./\(qemuEscape(socket)),server=on,wait=off",
                 "-device", "virtio-serial-pci,id=\(controller)",
                 "-device", "virtserialport,bus=\(controller).0,chardev=\(chardev),name=org.qemu.guest_agent.0")
    }
}
