#if canImport(Glibc)
import Glibc
#endif

/// `display`: front-end and graphics card (qemu-cmdline.md §3). VNC display
/// numbers are port − 5900, as QEMU counts them; a free port is found by
/// trying to bind it.
public enum DisplayModule: BuildCmdModule {
    public static let name = "display"

    public static func build(_ c: inout QemuCommand) throws {
        let device = c.value("vm_display_device")
        if device == "none" {
            c.append("-display", "none", "-vga", "none")
            return
        }
        if device == "tcx" || device == "cg3" { throw c.invalid("vm_display_device", "a SPARC-only card; x86 guests cannot use it") }
        let type = c.value("vm_display_type")
        switch type {
        case "sdl", "gtk", "none":
            c.append("-display", type, "-vga", device)
        case "vnc", "spice":
            let iface = c.value("vm_display_iface")
            let port = try choosePort(&c)
            if type == "vnc" {
                c.append("-display", "vnc=\(iface):\(port - 5900)", "-vga", device)
                c.notices.append("\(c.value("vm_name")): listening on vnc://\(iface):\(port)")
            } else {
                c.append("-chardev", "spicevmc,id=spicechannel0,name=vdagent", "-device", "virtio-serial-pci",
                         "-device", "virtserialport,chardev=spicechannel0,name=com.redhat.spice.0",
                         "-spice", "addr=\(qemuEscape(iface)),port=\(port),disable-ticketing=on", "-vga", "qxl")
                c.notices.append("\(c.value("vm_name")): listening on spice://\(iface):\(port)")
            }
        default:
            throw c.invalid("vm_display_type", "expected sdl, gtk, vnc, spice or none")
        }
    }

    static func choosePort(_ c: inout QemuCommand) throws -> Int {
        let minimum = Int(c.value("vm_display_portmin")) ?? 5900
        let lowest = max(minimum, c.value("vm_display_type") == "vnc" ? 5900 : 1)
        if !c.value("vm_display_port").isEmpty {
            guard let p = Int(c.value("vm_display_port")), p >= lowest, p <= 65535 else {
                throw c.invalid("vm_display_port", "expected a port from \(lowest) to 65535")
            }
            return p
        }
        let iface = c.value("vm_display_iface")
        for p in lowest...65535 where isFree(port: p, address: iface) { return p }
        throw VMToolsError(.failure, "vm_display_port", "no free port from \(lowest) on \(iface)")
    }

    static func isFree(port: Int, address: String) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, address, &addr.sin_addr) == 1 else { return false }
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
