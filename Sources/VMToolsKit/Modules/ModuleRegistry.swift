/// The compiled-in modules, by category and name (modules.md §2.3). The
/// `cfg_modules_*` lists name them; an unknown name is an error.
///
/// A file `CATEGORY/NAME` or `CATEGORY/NAME.inc.sh` under the user's
/// (`cfg_include_userhome=yes`) or the system's `modules` directory replaces a
/// module. Running such external modules is not supported yet, and an
/// override is never ignored silently: it stops the command.
public enum ModuleRegistry {
    public static let buildcmd: [String: any BuildCmdModule.Type] = {
        let all: [any BuildCmdModule.Type] = [
            QemuModule.self, BootModule.self, CpuModule.self, DisplayModule.self, KeyboardModule.self,
            MonitorModule.self, QmpModule.self, SerialModule.self, NameModule.self, NetworkingModule.self,
            RamModule.self, StorageCdromModule.self, StorageHddModule.self, MacosModule.self,
        ]
        return Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
    }()

    /// The modules a `cfg_modules_*` list names, in order.
    public static func buildcmdModules(_ global: SettingsTable, paths: SystemPaths) throws -> [any BuildCmdModule.Type] {
        let setting = "cfg_modules_buildcmd"
        let names: [String]
        do {
            names = try ExtendedString.splitList(global.value(setting))
        } catch {
            throw VMToolsError(.failure, setting, "'\(global.value(setting))' is not a list of module names")
        }
        return try names.map { name in
            try checkOverride(category: "buildcmd", name: name, includeUser: global.isYes("cfg_include_userhome"), paths: paths)
            guard let m = buildcmd[name] else {
                throw VMToolsError(.failure, setting, "module '\(name)' not found (known buildcmd modules: \(buildcmd.keys.sorted().joined(separator: " ")))")
            }
            return m
        }
    }

    static func checkOverride(category: String, name: String, includeUser: Bool, paths: SystemPaths) throws {
        var roots: [String] = []
        if includeUser, let u = paths.userDir { roots.append(u.appendingPathComponent("modules")) }
        roots.append(paths.sysconfDir.appendingPathComponent("modules"))
        for root in roots {
            for file in ["\(category)/\(name)", "\(category)/\(name).inc.sh"] where FileSystem.exists(root.appendingPathComponent(file)) {
                throw VMToolsError(.failure, root.appendingPathComponent(file),
                                   "overrides the \(category) module '\(name)', and external modules are not supported in this version; remove or rename it")
            }
        }
    }
}
