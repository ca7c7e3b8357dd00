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
        let clipboard = try c.vm.displayClipboard()
        let fullscreen = try c.vm.displayFullscreen()
        c.plan.machine.display = .init(frontend: Machine.Display.Frontend(rawValue: type.rawValue) ?? .none, device: device,
                                       fullscreen: fullscreen, clipboard: clipboard)
        // A local window needs no password: only a server gets one.
        _ = try c.vm.displayPassword()
        let vmName = c.vm.name
        switch type {
        case .sdl, .gtk:
            if let why = windowUnavailable(type.rawValue, qemu: c.argv.first, environment: c.environment) {
                try vnc(&c, iface: "127.0.0.1", port: nil, device: device, secret: try passwordSecret(&c),
                        saying: "\(vmName): \(why): using VNC instead of \(type.rawValue.uppercased()) on")
                c.plan.machine.display.fallback = why
            } else {
                c.append("-display", type.rawValue + (fullscreen ? ",full-screen=on" : ""), "-vga", device)
            }
            if clipboard { try vdagent(&c) }
        case .none:
            c.append("-display", type.rawValue, "-vga", device)
        case .vnc:
            try vnc(&c, iface: try c.vm.displayIface(), port: try c.vm.displayPort(), device: device, secret: try passwordSecret(&c), saying: "\(vmName): listening on")
            if clipboard { try vdagent(&c) }
        case .spice:
            let secret = try passwordSecret(&c)
            // SPICE's own vdagent channel carries the clipboard (and resizing).
            let spiceAccess = secret.map { "password-secret=\($0)" } ?? "disable-ticketing=on"
            let channel = ["-chardev", "spicevmc,id=spicechannel0,name=vdagent", "-device", "virtio-serial-pci",
                           "-device", "virtserialport,chardev=spicechannel0,name=com.redhat.spice.0"]
            if c.vm.displayOnUnixSocket {
                let socket = try unixSocket(&c)
                c.argv += channel + ["-spice", "unix=on,addr=\(qemuEscape(socket)),\(spiceAccess)", "-vga", "qxl"]
                c.plan.machine.display.listen = .unix(unixSocketPath(c))
                c.plan.machine.display.device = "qxl"
                c.notices.append("\(vmName): listening on spice+unix://\(unixSocketPath(c))")
                return
            }
            let iface = try c.vm.displayIface()
            // SPICE has no `to=`: without a port the executor takes the first
            // free one from vm_display_portmin right before QEMU starts.
            let port: String, shown: String
            let fixed = try c.vm.displayPort()
            c.plan.machine.display.listen = .tcp(iface: iface, port: fixed, lowest: fixed ?? c.vm.lowestDisplayPort)
            c.plan.machine.display.device = "qxl"
            if let fixed {
                (port, shown) = (String(fixed), String(fixed))
            } else {
                let lowest = c.vm.lowestDisplayPort
                c.plan.portChoices.append(.init(name: spicePortName, rule: .firstFree(iface: iface, lowest: lowest), setting: SettingKey.displayIface))
                port = LaunchPlan.placeholder(spicePortName, preview: String(lowest))
                shown = LaunchPlan.placeholder(spicePortName, preview: "\(lowest) (or the next free port)")
            }
            c.argv += channel + ["-spice", "addr=\(qemuEscape(iface)),port=\(port),\(spiceAccess)", "-vga", "qxl"]
            c.notices.append("\(vmName): listening on spice://\(iface):\(shown)")
        }
    }

    /// The name of the SPICE port's placeholder (LaunchPlan.PortChoice).
    static let spicePortName = "spice-port"

    /// The id of the `-object secret` holding the display password
    /// (`vm_display_password`, vm.settings(5)), or nil for none. QEMU reads
    /// it from a file, so it never shows in argv (`ps`). A generated one goes
    /// into the run directory, 0600, written by the executor before QEMU starts.
    static func passwordSecret(_ c: inout QemuCommand) throws -> String? {
        let file: String
        switch try c.vm.displayPassword() {
        case .none: return nil
        case .file(let path):
            // An export reads the file itself, and notes what vmup would refuse.
            if !c.export {
                guard let bytes = try? FileSystem.readBytes(path, limit: 4096) else {
                    throw c.vm.invalid(SettingKey.displayPassword, "cannot read \(path)")
                }
                if let problem = VMSettings.DisplayPassword.problem(bytes) { throw c.vm.invalid(SettingKey.displayPassword, "\(path) \(problem)") }
            }
            file = path
            c.plan.machine.display.password = .file(path)
        case .generated:
            guard let dir = c.runDirectory else {
                throw c.vm.invalid(SettingKey.displayPassword, "auto needs a VM home or run directory")
            }
            c.plan.displayPassword = dir.appendingPathComponent(VMFileNames.displayPassword)
            c.plan.machine.display.password = .generated(dir.appendingPathComponent(VMFileNames.displayPassword))
            file = "./" + VMFileNames.displayPassword
        }
        let id = "displaysecret"
        c.append("-object", "secret,id=\(id),format=raw,file=\(qemuEscape(file))")
        return id
    }

    /// `vm_display_iface=unix`: the display's socket in the run directory
    /// (0600, like the other sockets: Docs/vmup.1), relative to QEMU's
    /// working directory.
    static func unixSocket(_ c: inout QemuCommand) throws -> String {
        guard c.runDirectory != nil else {
            throw c.vm.invalid(SettingKey.displayIface, "unix needs a VM home or run directory")
        }
        return "./" + VMFileNames.displaySocket
    }

    /// The display socket's absolute path, for notices.
    static func unixSocketPath(_ c: QemuCommand) -> String {
        (c.runDirectory ?? ".").appendingPathComponent(VMFileNames.displaySocket)
    }

    /// QEMU's clipboard agent on the port the SPICE vdagent uses, so a guest
    /// running spice-vdagent shares the clipboard whatever the display
    /// (vm.settings(5), `vm_display_clipboard`). Needs QEMU 6.1 or later,
    /// asked by the executor before anything is written (a plan's probe).
    static func vdagent(_ c: inout QemuCommand) throws {
        if let qemu = c.argv.first {
            c.plan.probes.append(.init(executable: qemu, arguments: ["-chardev", "help"], expects: "qemu-vdagent", setting: SettingKey.displayClipboard,
                                       missing: "\(qemu) has no qemu-vdagent chardev (QEMU 6.1 or later needed)"))
        }
        c.append("-chardev", "qemu-vdagent,id=vdagent,clipboard=on", "-device", "virtio-serial-pci",
                 "-device", "virtserialport,chardev=vdagent,name=com.redhat.spice.0")
    }

    /// `-display vnc=…`: a fixed port is announced now; otherwise vmup asks
    /// QEMU which one it took, once it has started.
    static func vnc(_ c: inout QemuCommand, iface: String, port: Int?, device: String, secret: String? = nil, saying text: String) throws {
        let access = secret.map { ",password-secret=\($0)" } ?? ""
        c.plan.machine.display.frontend = .vnc
        if c.vm.displayOnUnixSocket {
            let socket = try unixSocket(&c)
            c.append("-display", "vnc=unix:\(qemuEscape(socket))" + access, "-vga", device)
            c.notices.append("\(text) vnc+unix://\(unixSocketPath(c))")
            c.plan.machine.display.listen = .unix(unixSocketPath(c))
            return
        }
        if let port {
            c.append("-display", "vnc=\(qemuEscape(iface)):\(port - 5900)" + access, "-vga", device)
            c.notices.append("\(text) vnc://\(iface):\(port)")
            c.plan.machine.display.listen = .tcp(iface: iface, port: port, lowest: port)
            return
        }
        let first = min(c.vm.lowestDisplayPort, 65535) - 5900
        c.append("-display", "vnc=\(qemuEscape(iface)):\(first),to=\(lastDisplay)" + access, "-vga", device)
        c.plan.machine.display.listen = .tcp(iface: iface, port: nil, lowest: first + 5900)
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
