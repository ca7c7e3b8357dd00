import VMToolsCore

/// `<graphics>` and `<video>`: the display QEMU really gets (`Machine.Display`).
extension LibvirtDomain {
    static func display(_ b: inout Builder, _ d: Machine.Display, keymap: String?) throws {
        guard d.device != "none" else {
            b.open("video")
            b.leaf("model", ["type": "none"])
            b.close()
            return
        }
        if d.fullscreen { b.note(SettingKey.displayFullscreen, "libvirt opens no window in full screen") }
        if let why = d.fallback {
            b.note(SettingKey.displayType, "\(why): vmup starts the VM with VNC on 127.0.0.1 here; exported as VNC")
        }
        switch d.frontend {
        case .none: break
        case .sdl, .gtk:
            if d.frontend == .gtk { b.note(SettingKey.displayType, "libvirt has no GTK display; exported as SDL") }
            b.leaf("graphics", ["type": "sdl"])
            if d.clipboard { b.note(SettingKey.displayClipboard, "the clipboard of an SDL window") }
        case .vnc, .spice:
            var attributes = ["type": d.frontend.rawValue]
            var iface = "127.0.0.1"
            switch d.listen {
            case .unix?:
                b.note(SettingKey.displayIface, "unix: libvirt places the display socket itself")
                attributes["autoport"] = "yes"
            case let .tcp(address, port, _)?:
                if let port {
                    attributes["port"] = String(port)
                    attributes["autoport"] = "no"
                } else {
                    attributes["autoport"] = "yes"
                }
                iface = address
            case nil: attributes["autoport"] = "yes"
            }
            attributes["listen"] = iface.isEmpty ? "127.0.0.1" : iface
            if let keymap { attributes["keymap"] = keymap }
            switch d.password {
            case .none: break
            case .generated: b.note(SettingKey.displayPassword, "auto: vmup makes a new password at each start; set passwd= by hand")
            case .file(let path):
                // A password file's whole content (vm.settings(5)).
                if let text = try FileSystem.readTextIfExists(path, limit: 4096) {
                    // vmup refuses such a file; the export does not guess.
                    if let problem = VMSettings.DisplayPassword.problem(Array(text.utf8)) {
                        b.note(SettingKey.displayPassword, "\(path) \(problem)")
                    } else {
                        attributes["passwd"] = text
                    }
                } else {
                    b.note(SettingKey.displayPassword, "cannot read \(path)")
                }
            }
            b.open("graphics", attributes)
            b.leaf("listen", ["type": "address", "address": iface])
            if d.frontend == .spice, d.clipboard { b.leaf("clipboard", ["copypaste": "yes"]) }
            b.close()
            if d.frontend == .vnc, d.clipboard { b.note(SettingKey.displayClipboard, "the clipboard of a VNC display (QEMU's vdagent)") }
        }
        let video: String? = switch d.device {
        case "std", "VGA", "": "vga"
        case "cirrus", "qxl", "virtio", "bochs", "ramfb": d.device
        case "vmware": "vmvga"
        default: nil
        }
        if let video {
            b.open("video")
            b.leaf("model", ["type": video])
            b.close()
        } else {
            b.note(SettingKey.displayDevice, "the graphics card \(d.device)")
        }
    }
}
