/// The three configuration roots of vmtools(1) SETTINGS PRECEDENCE.
///
/// `<share>` holds the shipped defaults and templates (the installation
/// layer), `<etc>` the system administrator's files, `<user>` the invoking
/// user's (read unless `cfg_include_userhome=no`). Tests and relocated
/// installs point the first two elsewhere with `VMTOOLS_DATADIR` and
/// `VMTOOLS_SYSCONFDIR`. A binary inside a SwiftPM build directory of a
/// checkout takes the checkout's `etc/` as its installation layer
/// (vmtools(1), FILES), so a developer's build never reads an older install.
public struct SystemPaths: Sendable, Equatable {
    public var dataDir: String
    public var sysconfDir: String
    public var userDir: String?
    /// How each directory was found, for error messages.
    public var dataDirOrigin = "given"
    public var sysconfDirOrigin = "given"
    public var userDirOrigin = "given"

    public init(dataDir: String, sysconfDir: String, userDir: String?) {
        self.dataDir = dataDir
        self.sysconfDir = sysconfDir
        self.userDir = userDir
    }

    public init(environment env: [String: String], executablePath: String?) {
        let prefix = Self.installPrefix(executablePath: executablePath)
        let exe = executablePath ?? "vmtools"
        if let d = env["VMTOOLS_DATADIR"], !d.isEmpty {
            dataDir = d
            dataDirOrigin = "set by VMTOOLS_DATADIR"
        } else if let checkout = Self.checkout(executablePath: executablePath) {
            dataDir = checkout.appendingPathComponent("etc")
            dataDirOrigin = "etc/ of the checkout \(checkout), whose build directory holds the binary \(exe)"
        } else {
            dataDir = prefix.appendingPathComponent("share/vmtools")
            dataDirOrigin = exe.deletingLastPathComponent.lastPathComponent == "bin"
                ? "PREFIX/share/vmtools for the binary \(exe)"
                : "the default PREFIX /usr/local, as the binary \(exe) is not in a bin/ directory"
        }
        let defaultEtc = (prefix == "/usr" || prefix == "/usr/local") ? "/etc/vmtools" : prefix.appendingPathComponent("etc/vmtools")
        if let d = env["VMTOOLS_SYSCONFDIR"], !d.isEmpty {
            sysconfDir = d
            sysconfDirOrigin = "set by VMTOOLS_SYSCONFDIR"
        } else {
            sysconfDir = defaultEtc
            sysconfDirOrigin = defaultEtc == "/etc/vmtools" ? "the system directory" : "PREFIX/etc/vmtools for the binary \(exe)"
        }
        // XDG: a relative XDG_CONFIG_HOME is invalid and must be ignored.
        if let xdg = env["XDG_CONFIG_HOME"], xdg.hasPrefix("/") {
            userDir = xdg.appendingPathComponent("vmtools")
            userDirOrigin = "$XDG_CONFIG_HOME/vmtools"
        } else if let home = env["HOME"], !home.isEmpty {
            userDir = home.appendingPathComponent(".config/vmtools")
            userDirOrigin = "$HOME/.config/vmtools"
        } else {
            userDir = nil
        }
    }

    /// `PREFIX` of `PREFIX/bin/vmtools`; `/usr/local` when the binary is elsewhere.
    /// A checkout's build directory is not a prefix: see `checkout`.
    static func installPrefix(executablePath: String?) -> String {
        guard let exe = executablePath else { return "/usr/local" }
        if checkout(executablePath: exe) != nil { return "/usr/local" }
        let bin = exe.deletingLastPathComponent
        guard bin.lastPathComponent == "bin" else { return "/usr/local" }
        return bin.deletingLastPathComponent
    }

    /// The checkout whose SwiftPM build directory (`.build`, `.build-…`)
    /// holds the binary: the directory above that component, when it has
    /// `Package.swift` and `etc/vmtools.conf`. `executablePath` is the real
    /// path (`/proc/self/exe`), so a symlink to the build elsewhere counts.
    static func checkout(executablePath: String?) -> String? {
        guard let exe = executablePath, exe.hasPrefix("/") else { return nil }
        let parts = exe.split(separator: "/", omittingEmptySubsequences: true).dropLast()
        // The innermost build directory wins (a checkout inside a checkout's build).
        for k in parts.indices.reversed() where parts[k].hasPrefix(".build") {
            let dir = "/" + parts[..<k].joined(separator: "/")
            if FileSystem.isRegularFile(dir.appendingPathComponent("Package.swift")),
               FileSystem.isRegularFile(dir.appendingPathComponent("etc/vmtools.conf")) {
                return dir
            }
        }
        return nil
    }

    /// How a layer's directory was found, for an error in one of its files.
    public func describe(_ layer: ConfigLayer) -> String {
        switch layer {
        case .share: return "installation layer: \(dataDir), \(dataDirOrigin)"
        case .etc: return "system layer: \(sysconfDir), \(sysconfDirOrigin)"
        case .user: return "user layer: \(userDir ?? "none"), \(userDirOrigin)"
        }
    }

    public var shareConfig: String { dataDir.appendingPathComponent("vmtools.conf") }
    public var etcConfig: String { sysconfDir.appendingPathComponent("vmtools.conf") }
    public var userConfig: String? { userDir?.appendingPathComponent("vmtools.conf") }

    /// Image catalog directories (vmtools(7), IMAGE CATALOG), lowest layer first:
    /// a later directory's `NAME.image` replaces an earlier one's.
    public func imageDirectories(includeUser: Bool) -> [String] {
        var dirs = [dataDir.appendingPathComponent("images"), sysconfDir.appendingPathComponent("images")]
        if includeUser, let u = userDir { dirs.append(u.appendingPathComponent("images")) }
        return dirs
    }

    /// Template directories, first match wins (vmtools(7) TEMPLATES).
    public func templateDirectories(includeUser: Bool) -> [String] {
        var dirs: [String] = []
        if includeUser, let u = userDir { dirs.append(u.appendingPathComponent("templates")) }
        dirs.append(sysconfDir.appendingPathComponent("templates"))
        dirs.append(dataDir.appendingPathComponent("templates"))
        dirs.append(dataDir.appendingPathComponent("modules/templates"))
        return dirs
    }
}
