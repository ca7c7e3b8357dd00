import VMToolsCore

/// `display`: front-end and graphics card (vmup(1)). VNC display
/// numbers are port − 5900, as QEMU counts them. Without an explicit port,
/// QEMU takes the first free VNC display itself (`to=`), which no probe
/// beforehand can race with; the executor reads the port back over QMP
/// (`query-vnc`), a fact of the plan. Where SDL or GTK cannot open a window, the VM gets VNC on
/// 127.0.0.1 instead (vm.settings(5)).
public enum DisplayModule: BuildCmdModule {
    public static let name = "display"
    /// The highest VNC display QEMU may take: port 65535.
    static let lastDisplay = 65535 - 5900

    public static func build(_ c: inout QemuCommand) throws {
        let device = try c.vm.displayDevice()
        if device == "none" {
            c.append("-display", "none", "-vga", "none")
            return
        }
        let type = try c.vm.displayType()
        let vmName = c.vm.name
        switch type {
        case .sdl, .gtk:
            guard let why = windowUnavailable(type.rawValue, qemu: c.argv.first, environment: c.environment) else {
                c.append("-display", type.rawValue, "-vga", device)
                return
            }
            try vnc(&c, iface: "127.0.0.1", port: nil, device: device, saying: "\(vmName): \(why): using VNC instead of \(type.rawValue.uppercased()) on")
        case .none:
            c.append("-display", type.rawValue, "-vga", device)
        case .vnc:
            try vnc(&c, iface: c.vm.displayIface, port: try c.vm.displayPort(), device: device, saying: "\(vmName): listening on")
        case .spice:
            let iface = c.vm.displayIface
            // SPICE has no `to=`: without a port the executor takes the first
            // free one from vm_display_portmin right before QEMU starts.
            let fixed = try c.vm.displayPort()
            let port = fixed ?? c.vm.lowestDisplayPort
            c.append("-chardev", "spicevmc,id=spicechannel0,name=vdagent", "-device", "virtio-serial-pci",
                     "-device", "virtserialport,chardev=spicechannel0,name=com.redhat.spice.0",
                     "-spice", spiceOption(iface: iface, port: port), "-vga", "qxl")
            c.notices.append(spiceNotice(vmName: vmName, iface: iface, port: port) + (fixed == nil ? " (or the next free port)" : ""))
            if fixed == nil {
                c.plan.spicePort = .init(iface: iface, lowest: port, argument: c.argv.count - 3, notice: c.notices.count - 1, vmName: vmName)
            }
        }
    }

    static func spiceOption(iface: String, port: Int) -> String { "addr=\(qemuEscape(iface)),port=\(port),disable-ticketing=on" }
    static func spiceNotice(vmName: String, iface: String, port: Int) -> String { "\(vmName): listening on spice://\(iface):\(port)" }

    /// `-display vnc=…`: a fixed port is announced now; otherwise vmup asks
    /// QEMU which one it took, once it has started.
    static func vnc(_ c: inout QemuCommand, iface: String, port: Int?, device: String, saying text: String) throws {
        if let port {
            c.append("-display", "vnc=\(qemuEscape(iface)):\(port - 5900)", "-vga", device)
            c.notices.append("\(text) vnc://\(iface):\(port)")
            return
        }
        let first = min(c.vm.lowestDisplayPort, 65535) - 5900
        c.append("-display", "vnc=\(qemuEscape(iface)):\(first),to=\(lastDisplay)", "-vga", device)
        if c.runDirectory != nil, c.daemonize {
            c.plan.readBack.append(.vncPort(announcement: text))
        }
        if c.dryRun || c.runDirectory == nil || !c.daemonize {
            // No QMP to ask (QEMU in the foreground), or not yet (-n): say
            // where QEMU starts looking.
            c.notices.append("\(text) vnc://\(iface):\(first + 5900) or the next free port (vmps shows which)")
        }
    }

    /// Why a local window (SDL, GTK) cannot open here, or nil when it can:
    /// no display server to talk to, or a modular QEMU (Debian's) without
    /// its `ui-<type>` module (package qemu-system-gui). A QEMU without
    /// modules has its front-ends built in.
    static func windowUnavailable(_ type: String, qemu: String?, environment: [String: String], moduleDirectories: [String]? = nil) -> String? {
        if (environment["DISPLAY"] ?? "").isEmpty && (environment["WAYLAND_DISPLAY"] ?? "").isEmpty {
            return "no $DISPLAY or $WAYLAND_DISPLAY"
        }
        for dir in moduleDirectories ?? Self.moduleDirectories(qemu: qemu, environment: environment) {
            guard let names = try? FileSystem.listDirectory(dir), names.contains(where: { $0.hasPrefix("ui-") }) else { continue }
            return names.contains("ui-\(type).so") ? nil : "QEMU has no \(type.uppercased()) module (Debian: apt-get install qemu-system-gui)"
        }
        return nil
    }

    /// Where QEMU loads its modules from: `$QEMU_MODULE_DIR`, else beside its prefix.
    static func moduleDirectories(qemu: String?, environment: [String: String]) -> [String] {
        if let dir = environment["QEMU_MODULE_DIR"], !dir.isEmpty { return [dir] }
        guard let qemu, qemu.hasPrefix("/") else { return [] }
        let prefix = qemu.deletingLastPathComponent.deletingLastPathComponent
        #if arch(x86_64)
        let triple = "x86_64-linux-gnu"
        #else
        let triple = "aarch64-linux-gnu"
        #endif
        return [prefix + "/lib/\(triple)/qemu", prefix + "/lib64/qemu", prefix + "/lib/qemu"]
    }
}
