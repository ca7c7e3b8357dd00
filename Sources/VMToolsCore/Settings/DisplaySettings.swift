/// Clipboard, access control and full screen of the display (vm.settings(5),
/// DISPLAY; vmtools(7), DISPLAYS).
extension SettingKey {
    public static let displayClipboard = "vm_display_clipboard"
    public static let displayPassword = "vm_display_password"
    public static let displayFullscreen = "vm_display_fullscreen"
}

extension VMFileNames {
    /// The generated display password of `vm_display_password=auto`, 0600,
    /// for one run (vminfo(1) shows it).
    public static let displayPassword = "display.password"
    /// The UNIX socket of `vm_display_iface=unix`.
    public static let displaySocket = "display.sock"
}

extension VMSettings {
    public enum DisplayPassword: Equatable, Sendable {
        case none
        /// Generated per start into the run directory's `display.password`.
        case generated
        /// A file holding the password (its whole content).
        case file(String)

        /// What is wrong with a password file's content, or nil: QEMU takes
        /// the file whole, so `echo pw > file` would make "pw\n" the
        /// password (vmtools.conf(5)). vmup refuses such a file, vminfo -L
        /// notes it.
        public static func problem(_ content: [UInt8]) -> String? {
            if content.isEmpty { return "is empty" }
            if content.last == 0x0A { return "ends with a newline, which would be part of the password (write it with printf '%s')" }
            return nil
        }
    }

    /// `vm_display_clipboard`: yes or no (empty is no).
    public func displayClipboard() throws -> Bool {
        try yesNo(SettingKey.displayClipboard)
    }

    /// `vm_display_fullscreen`: yes or no (empty is no); SDL and GTK only.
    public func displayFullscreen() throws -> Bool {
        try yesNo(SettingKey.displayFullscreen)
    }

    /// `vm_display_password`: no (or empty), auto, or an absolute file path.
    public func displayPassword() throws -> DisplayPassword {
        let v = table.value(SettingKey.displayPassword)
        switch v {
        case "", "no": return .none
        case "auto": return .generated
        default:
            guard v.hasPrefix("/") else { throw invalid(SettingKey.displayPassword, "expected no, auto or an absolute file path") }
            return .file(v)
        }
    }

    /// `vm_display_iface=unix`: a UNIX socket in the VM home instead of a TCP port.
    public var displayOnUnixSocket: Bool { table.value(SettingKey.displayIface) == "unix" }

    private func yesNo(_ name: String) throws -> Bool {
        let v = table.value(name)
        guard ["yes", "no", ""].contains(v) else { throw invalid(name, "expected yes or no") }
        return v == "yes"
    }
}
