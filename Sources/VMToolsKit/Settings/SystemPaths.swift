/// The three configuration roots of settings.md §2.1.
///
/// `<share>` holds the shipped defaults and templates, `<etc>` the system
/// administrator's files, `<user>` the invoking user's (read only when
/// `cfg_include_userhome=yes`). Tests and relocated installs point the first
/// two elsewhere with `VMTOOLS_DATADIR` and `VMTOOLS_SYSCONFDIR`.
public struct SystemPaths: Sendable, Equatable {
    public var dataDir: String
    public var sysconfDir: String
    public var userDir: String?

    public init(dataDir: String, sysconfDir: String, userDir: String?) {
        self.dataDir = dataDir
        self.sysconfDir = sysconfDir
        self.userDir = userDir
    }

    public init(environment env: [String: String], executablePath: String?) {
        let prefix = Self.installPrefix(executablePath: executablePath)
        dataDir = env["VMTOOLS_DATADIR"].flatMap { $0.isEmpty ? nil : $0 } ?? prefix.appendingPathComponent("share/vmtools")
        let defaultEtc = (prefix == "/usr" || prefix == "/usr/local") ? "/etc/vmtools" : prefix.appendingPathComponent("etc/vmtools")
        sysconfDir = env["VMTOOLS_SYSCONFDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? defaultEtc
        // XDG: a relative XDG_CONFIG_HOME is invalid and must be ignored.
        if let xdg = env["XDG_CONFIG_HOME"], xdg.hasPrefix("/") {
            userDir = xdg.appendingPathComponent("vmtools")
        } else if let home = env["HOME"], !home.isEmpty {
            userDir = home.appendingPathComponent(".config/vmtools")
        } else {
            userDir = nil
        }
    }

    /// `PREFIX` of `PREFIX/bin/vmtools`; `/usr/local` when the binary is elsewhere.
    static func installPrefix(executablePath: String?) -> String {
        guard let exe = executablePath else { return "/usr/local" }
        let bin = exe.deletingLastPathComponent
        guard bin.lastPathComponent == "bin" else { return "/usr/local" }
        return bin.deletingLastPathComponent
    }

    public var shareConfig: String { dataDir.appendingPathComponent("vmtools.conf") }
    public var etcConfig: String { sysconfDir.appendingPathComponent("vmtools.conf") }
    public var userConfig: String? { userDir?.appendingPathComponent("vmtools.conf") }

    /// Template directories, first match wins (modules.md §7.3).
    public func templateDirectories(includeUser: Bool) -> [String] {
        var dirs: [String] = []
        if includeUser, let u = userDir { dirs.append(u.appendingPathComponent("templates")) }
        dirs.append(sysconfDir.appendingPathComponent("templates"))
        dirs.append(dataDir.appendingPathComponent("templates"))
        dirs.append(dataDir.appendingPathComponent("modules/templates"))
        return dirs
    }
}
