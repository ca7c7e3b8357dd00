/// Builds settings through every layer, in the order of vmtools(1) SETTINGS PRECEDENCE
/// (the recommended, fixed order):
///
/// built-in defaults < `<share>/vmtools.conf` < `<etc>/vmtools.conf` <
/// `<user>/vmtools.conf` < the parent chain (furthest ancestor first) < for
/// each file, its templates at their `template` line, then its own
/// assignments < `-t` templates < the command line.
///
/// Files are read as data; nothing is ever executed.
public struct SettingsResolver {
    public var paths: SystemPaths
    public var commandLine: CommandLineSettings
    /// Receives notices that do not stop the load.
    public var warn: (String) -> Void

    public init(paths: SystemPaths, commandLine: CommandLineSettings = .init(), warn: @escaping (String) -> Void = { _ in }) {
        self.paths = paths
        self.commandLine = commandLine
        self.warn = warn
    }

    // MARK: Global configuration

    public func loadGlobal() throws -> GlobalConfig {
        var table = SettingsTable()
        for (name, value) in Defaults.values { table.set(name, value, .builtin) }
        var files: [String] = []

        func load(_ path: String, _ layer: ConfigLayer) throws {
            guard FileSystem.exists(path) else { return }
            let parsed: ConfigFileParser.Result
            do {
                parsed = try ConfigFileParser.parseFile(path, kind: .configuration)
            } catch var e as VMToolsError {
                // Which layer, and why this file: an old install found by
                // accident must be recognisable (vmtools(1), FILES).
                e.message += " (\(paths.describe(layer)))"
                throw e
            }
            for case let .assign(name, parts, line) in parsed.statements {
                table.set(name, Self.expand(parts, table), .config(layer: layer, path: path, line: line))
            }
            files.append(path)
        }

        try load(paths.shareConfig, .share)
        try load(paths.etcConfig, .etc)
        let includeUser = (commandLine.value("cfg_include_userhome") ?? table.value("cfg_include_userhome")) == "yes"
        if includeUser, let user = paths.userConfig { try load(user, .user) }

        let known = Set(table.unorderedNames)
        for e in commandLine.entries where !known.contains(e.name) && !SettingName.isInterfaceSetting(e.name)
            && !SettingName.isDriveSetting(e.name) && !SettingName.isUSBSetting(e.name) && !SettingName.isShareSetting(e.name) {
            throw VMToolsError.usage("\(e.flag) \(e.name): unknown setting (see vmtools.conf(5) for the list; custom names must first be defined in a vmtools.conf)")
        }
        for e in commandLine.entries where e.name.hasPrefix("cfg_") {
            table.set(e.name, e.value, .commandLine(e.flag))
        }
        try Self.validate(table)
        return GlobalConfig(settings: table, files: files, knownNames: known, paths: paths)
    }

    /// Checks the `cfg_*` values every command relies on.
    static func validate(_ table: SettingsTable) throws {
        _ = try table.integer("cfg_limit_nesting", minimum: 1)
        _ = try table.integer("cfg_limit_waitlock", minimum: 0)
        _ = try table.integer("cfg_ui_verbosity", minimum: 0)
        // Every cfg_file_* names a file inside a VM home (vmtools.conf(5)).
        for name in table.names(withPrefix: "cfg_file_") {
            let v = table.value(name)
            if v.isEmpty || v.contains("/") || v == "." || v == ".." {
                throw VMToolsError(.failure, name, "'\(v)' must be a plain file name (from \(table.provenance(name) ?? .builtin))")
            }
        }
    }

    static func expand(_ parts: [ValuePart], _ table: SettingsTable) -> String {
        var s = ""
        for p in parts {
            switch p {
            case let .literal(t): s += t
            case let .setting(n): s += table.value(n)
            }
        }
        return s
    }

    // MARK: VM homes

    /// Loads the VM in `home` (a canonical directory path).
    public func loadVM(home: String, global: GlobalConfig) throws -> ResolvedVM {
        var state = LoadState(global: global, limit: global.typed.nestingLimit)
        let settingsPath = global.settingsPath(in: home)
        try VMSettingsFile.refuseLink(settingsPath)
        guard FileSystem.isReadable(settingsPath), FileSystem.isRegularFile(settingsPath) else {
            throw VMToolsError(.failure, home, "not a VM home (no readable \(global.fileNames.settings))")
        }
        state.table.set("vm_home", home, .derived("the VM's directory"))
        state.table.set("vm_name", home.lastPathComponent, .derived("the directory name"))
        state.visited.insert(home)
        let own = try execute(settingsPath, depth: 0, state: &state)

        for name in commandLine.templates {
            try applyTemplate(name, nesting: 1, stack: [], state: &state)
        }
        for e in commandLine.entries where e.name != "vm_home" {
            state.table.set(e.name, e.value, .commandLine(e.flag))
        }
        return ResolvedVM(home: home, settingsPath: settingsPath, file: own, settings: state.table,
                          ancestors: state.ancestors, templates: state.templates, templateFiles: state.templateFiles)
    }

    /// Applies templates to settings that are not a VM's file (a new VM, a
    /// bare image); returns the list with nested templates added.
    public func applyTemplates(_ names: [String], to table: inout SettingsTable, global: GlobalConfig) throws -> [String] {
        var state = LoadState(global: global, limit: global.typed.nestingLimit)
        state.table = table
        for name in names {
            try applyTemplate(name, nesting: 1, stack: [], state: &state)
        }
        table = state.table
        return state.templates
    }

    private struct LoadState {
        var global: GlobalConfig
        var limit: Int
        var table: SettingsTable
        var ancestors: [String] = []
        var visited: Set<String> = []
        /// Templates applied so far, in order; each is applied once.
        var templates: [String] = []
        var applied: Set<String> = []
        var templateFiles: [String: String] = [:]

        init(global: GlobalConfig, limit: Int) {
            self.global = global
            self.limit = limit
            self.table = global.settings
        }
    }

    /// Runs one `vm.settings` in file order; a `parent` line loads the whole
    /// ancestor chain right there, so the VM's own later lines win.
    @discardableResult
    private func execute(_ path: String, depth: Int, state: inout LoadState) throws -> VMSettingsFile {
        let file = try VMSettingsFile.read(path)
        file.warnings.forEach(warn)
        let dir = path.deletingLastPathComponent
        for statement in file.statements {
            switch statement {
            case let .assign(name, value, line):
                state.table.set(name, value, .vmFile(path: path, line: line, depth: depth))
            case let .template(names, _):
                for name in names {
                    try applyTemplate(name, nesting: 1, stack: [], state: &state)
                }
            case let .parent(recorded, line):
                let home = try Self.resolveParent(recorded, relativeTo: dir, settingsFile: path, line: line)
                if state.visited.contains(home) {
                    throw VMToolsError.file(path, line: line, "parent loop: '\(home)' is already in this VM's parent chain")
                }
                if depth + 1 >= state.limit {
                    throw VMToolsError.file(path, line: line, "parent chain deeper than cfg_limit_nesting (\(state.limit)); is there a loop?")
                }
                state.visited.insert(home)
                state.ancestors.append(home)
                let parentFile = state.global.settingsPath(in: home)
                guard FileSystem.isReadable(parentFile) else {
                    throw VMToolsError.file(path, line: line, "parent '\(home)' is not a VM home (no readable \(state.global.fileNames.settings)); 'vmfix -p' can repair the link")
                }
                try execute(parentFile, depth: depth + 1, state: &state)
            }
        }
        return file
    }

    /// A relative `parent` path is relative to the directory of the file that
    /// holds it (the original used the current directory, a bug).
    static func resolveParent(_ recorded: String, relativeTo dir: String, settingsFile: String, line: Int) throws -> String {
        let absolute = recorded.hasPrefix("/") ? recorded : dir.appendingPathComponent(recorded)
        guard let real = FileSystem.realPath(absolute), FileSystem.isDirectory(real) else {
            throw VMToolsError.file(settingsFile, line: line, "parent '\(recorded)' does not exist; 'vmfix -p' can repair the link")
        }
        return real
    }

    /// Applies a template once per resolution (vm.settings(5), TEMPLATES): a
    /// later `template` line naming it again, or a second path to it through
    /// nested templates, does nothing. Without that, `t0: template t1 t1`,
    /// `t1: template t2 t2` … costs 2^depth applications; with it, the work
    /// is bounded by the number of distinct templates.
    private func applyTemplate(_ name: String, nesting: Int, stack: [String], state: inout LoadState) throws {
        if stack.contains(name) {
            throw VMToolsError(.failure, "template \(name)", "template loop: \((stack + [name]).joined(separator: " → "))")
        }
        if state.applied.contains(name) { return }
        if nesting >= state.limit {
            throw VMToolsError(.failure, "template \(name)", "templates nested deeper than cfg_limit_nesting (\(state.limit))")
        }
        let path = try findTemplate(name, includeUser: state.table.isYes("cfg_include_userhome"),
                                    userOff: Self.userHomeOff(state.table))
        let parsed = try ConfigFileParser.parseFile(path, kind: .template)
        state.applied.insert(name)
        state.templates.append(name)
        state.templateFiles[name] = path
        for statement in parsed.statements {
            switch statement {
            case let .assign(n, parts, line):
                if n.hasPrefix("cfg_") || n == "vm_home" {
                    warn("\(path):\(line): \(n) ignored: templates set a VM's vm_* settings only")
                    continue
                }
                state.table.set(n, Self.expand(parts, state.table), .template(name: name, path: path, line: line))
            case let .template(names, _):
                for nested in names {
                    try applyTemplate(nested, nesting: nesting + 1, stack: stack + [name], state: &state)
                }
            }
        }
    }

    public func findTemplate(_ name: String, includeUser: Bool, userOff: String? = nil) throws -> String {
        guard SettingName.isTemplateName(name) else {
            throw VMToolsError(.failure, "template \(name)", "invalid template name (letters, digits and _ only)")
        }
        let file = name + ".tpl"
        let dirs = paths.templateDirectories(includeUser: includeUser)
        var notes: [String] = []
        for dir in dirs {
            let p = dir.appendingPathComponent(file)
            if FileSystem.isReadable(p) { return p }
            if FileSystem.lexists(p) { notes.append("\(p) exists but is not readable") }
        }
        if !includeUser, let user = paths.userDir?.appendingPathComponent("templates").appendingPathComponent(file),
           FileSystem.lexists(user) {
            notes.append("\(user) is not searched: \(userOff ?? "cfg_include_userhome is not 'yes'")")
        }
        let why = notes.isEmpty ? "" : "; " + notes.joined(separator: "; ")
        throw VMToolsError(.failure, "template \(name)", "not found (looked for \(file) in \(dirs.joined(separator: ", "))\(why))")
    }

    /// Why the user's directory is not read, naming where that was decided.
    package static func userHomeOff(_ table: SettingsTable) -> String {
        let from = table.provenance("cfg_include_userhome").map { " (set by \($0))" } ?? ""
        return "cfg_include_userhome is '\(table.value("cfg_include_userhome"))'\(from)"
    }
}
