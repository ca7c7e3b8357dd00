import VMToolsCore

#if canImport(Glibc)
import Glibc
#endif

/// The four module categories (vmtools(7) CUSTOMIZATION), each run in the order of its
/// `cfg_modules_*` list.
public enum ModuleCategory: String, CaseIterable, Sendable {
    case configureTemplates = "configure/templates"
    case configureSettings = "configure/settings"
    case buildcmd
    case clone

    public var listSetting: String {
        switch self {
        case .configureTemplates: return SettingKey.modulesConfigureTemplates
        case .configureSettings: return SettingKey.modulesConfigureSettings
        case .buildcmd: return SettingKey.modulesBuildcmdList
        case .clone: return SettingKey.modulesClone
        }
    }

    /// The compiled-in modules of the category, by name.
    public var builtinNames: [String] {
        switch self {
        case .configureTemplates: return ModuleRegistry.configureTemplates.keys.sorted()
        case .configureSettings: return ModuleRegistry.configureSettings.keys.sorted()
        case .buildcmd: return ModuleRegistry.buildcmd.keys.sorted()
        case .clone: return ModuleRegistry.clone.keys.sorted()
        }
    }
}

/// Which implementation one module of a list gets.
public struct ModuleChoice: Equatable, Sendable {
    public struct Ignored: Equatable, Sendable {
        public var path: String
        public var why: String
    }

    public var category: ModuleCategory
    public var name: String
    /// The override file that replaces it; nil for the compiled-in module.
    public var file: String?
    /// Override files passed over as unsafe.
    public var ignored: [Ignored] = []

    public var external: ExternalModule? { file.map { ExternalModule(path: $0, category: category, name: name) } }
    public var describedSource: String { file ?? "built-in" }
}

/// The compiled-in modules, by category and name (vmtools(7) CUSTOMIZATION), and the
/// lookup of the files that replace them.
///
/// An executable `CATEGORY/NAME` under the user's module directory (unless
/// `cfg_include_userhome=no`), the system's (`/etc/vmtools/modules`) or the
/// installation's (`PREFIX/share/vmtools/modules`), first found wins,
/// replaces the built-in module of that name; a new name (by convention
/// `c_…`) adds a module. A file that others could have written is passed
/// over with a WARNING: vmtools never runs it.
public enum ModuleRegistry {
    public static let buildcmd: [String: any BuildCmdModule.Type] = {
        let all: [any BuildCmdModule.Type] = [
            QemuModule.self, BootModule.self, CpuModule.self, DisplayModule.self, KeyboardModule.self,
            MonitorModule.self, QmpModule.self, GuestAgentModule.self, SerialModule.self, NameModule.self, NetworkingModule.self,
            RamModule.self, StorageCdromModule.self, StorageHddModule.self, MacosModule.self, ShareModule.self, CloudInitModule.self,
            UUIDModule.self, InstallModule.self, USBModule.self, TpmModule.self, FirmwareModule.self,
        ]
        return Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
    }()

    /// The module directories, most specific first.
    public static func roots(includeUser: Bool, paths: SystemPaths) -> [String] {
        var roots: [String] = []
        if includeUser, let u = paths.userDir { roots.append(u.appendingPathComponent("modules")) }
        roots.append(paths.sysconfDir.appendingPathComponent("modules"))
        roots.append(paths.dataDir.appendingPathComponent("modules"))
        return roots
    }

    /// The names a list setting holds.
    static func names(_ setting: String, in settings: SettingsTable) throws -> [String] {
        try VMSettings(settings).moduleList(setting)
    }

    /// Resolves each name of a list to its implementation, in order.
    public static func choose(_ category: ModuleCategory, names: [String], settings: SettingsTable, paths: SystemPaths,
                              console: Console? = nil) throws -> [ModuleChoice] {
        let roots = roots(includeUser: VMSettings(settings).includeUserHome, paths: paths)
        return try names.map { name in
            guard !name.isEmpty, name.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" || $0 == "-") }) else {
                throw VMToolsError(.failure, category.listSetting, "'\(name)' is not a module name (letters, digits, _ and - only)")
            }
            var choice = ModuleChoice(category: category, name: name)
            for root in roots {
                let path = root.appendingPathComponent(category.rawValue).appendingPathComponent(name)
                if FileSystem.exists(path + ".inc.sh") {
                    throw VMToolsError(.failure, path + ".inc.sh", "a shell module of the original vmtools: it cannot run here; make it an executable '\(path.lastPathComponent)' speaking the protocol of vmtools(7)")
                }
                guard FileSystem.lexists(path) else { continue }
                if let why = unsafeReason(path, root: root) {
                    choice.ignored.append(.init(path: path, why: why))
                    console?.warning("\(path): ignored, \(why)")
                    continue
                }
                guard FileSystem.isRegularFile(path), access(path, X_OK) == 0 else {
                    throw VMToolsError(.failure, path, "overrides the \(category.rawValue) module '\(name)' but is not an executable file (chmod +x?)")
                }
                choice.file = path
                break
            }
            if choice.file == nil && !category.builtinNames.contains(name) {
                var why = choice.ignored.map { "; \($0.path) is ignored: \($0.why)" }.joined()
                if !VMSettings(settings).includeUserHome,
                   let user = paths.userDir?.appendingPathComponent("modules").appendingPathComponent(category.rawValue).appendingPathComponent(name),
                   FileSystem.lexists(user) {
                    why += "; \(user) is not searched: \(SettingsResolver.userHomeOff(settings))"
                }
                throw VMToolsError(.failure, category.listSetting, "module '\(name)' not found: no built-in \(category.rawValue) module (\(category.builtinNames.joined(separator: " "))) and no file \(category.rawValue)/\(name) in \(roots.joined(separator: ", "))\(why)")
            }
            return choice
        }
    }

    /// Why an override file must not be run: anyone but its user (or root)
    /// could have written it or the directories that lead to it. A symbolic
    /// link is followed: the file it resolves to and every directory above
    /// that, up to `/`, must be as safe as the link's own directories.
    static func unsafeReason(_ path: String, root: String) -> String? {
        if let why = unsafeReason(walking: path, upTo: root, label: "its directory") { return why }
        guard let real = FileSystem.realPath(path) else { return "cannot be inspected: \(FileSystem.errnoMessage())" }
        if real == path { return nil }
        return unsafeReason(walking: real, upTo: "/", label: "the directory of its target").map { "it links to \(real): \($0)" }
    }

    private static func unsafeReason(walking path: String, upTo root: String, label: String) -> String? {
        let me = getuid()
        var dir = path
        while true {
            var st = stat()
            guard stat(dir, &st) == 0 else { return "cannot be inspected: \(FileSystem.errnoMessage())" }
            let what = dir == path ? "the file" : "\(label) \(dir)"
            if st.st_uid != me && st.st_uid != 0 { return "\(what) belongs to another user (uid \(st.st_uid))" }
            if st.st_mode & 0o022 != 0 && (st.st_mode & S_ISVTX) == 0 { return "\(what) is writable by group or others" }
            if dir == root || dir == "/" { return nil }
            dir = dir.deletingLastPathComponent
        }
    }

    /// The clone modules: `cfg_modules_clone`, with `-m` names added and
    /// `-M` names removed (whole words).
    static func cloneModules(_ settings: SettingsTable, add: [String], remove: [String], paths: SystemPaths,
                             console: Console? = nil) throws -> [ModuleChoice] {
        var names = try Self.names(SettingKey.modulesClone, in: settings)
        // -M of a module that exists nowhere is a typo, as -m of one is.
        for r in remove where !names.contains(r) { _ = try choose(.clone, names: [r], settings: settings, paths: paths) }
        names.removeAll { remove.contains($0) }
        for a in add where !names.contains(a) { names.append(a) }
        return try choose(.clone, names: names, settings: settings, paths: paths, console: console)
    }

    /// The buildcmd modules for one VM: `cfg_modules_buildcmd`, then the
    /// VM's own extra ones (`vm_modules_buildcmd`, e.g. `macos` from its template).
    public static func buildcmdModules(_ settings: SettingsTable, paths: SystemPaths, console: Console? = nil) throws -> [ModuleChoice] {
        var names = try Self.names(SettingKey.modulesBuildcmdList, in: settings)
        for extra in try Self.names(SettingKey.modulesBuildcmd, in: settings) where !names.contains(extra) { names.append(extra) }
        return try choose(.buildcmd, names: names, settings: settings, paths: paths, console: console)
    }

    static func configureModules(_ category: ModuleCategory, settings: SettingsTable, paths: SystemPaths,
                                 console: Console? = nil) throws -> [ModuleChoice] {
        try choose(category, names: names(category.listSetting, in: settings), settings: settings, paths: paths, console: console)
    }

    /// Every category's modules for these settings (vminfo -m).
    public static func all(_ settings: SettingsTable, paths: SystemPaths) -> [(ModuleCategory, Result<[ModuleChoice], VMToolsError>)] {
        ModuleCategory.allCases.map { category in
            do {
                let list = category == .buildcmd
                    ? try buildcmdModules(settings, paths: paths)
                    : try choose(category, names: names(category.listSetting, in: settings), settings: settings, paths: paths)
                return (category, .success(list))
            } catch let e as VMToolsError {
                return (category, .failure(e))
            } catch {
                return (category, .failure(VMToolsError(.failure, category.listSetting, "\(error)")))
            }
        }
    }
}
