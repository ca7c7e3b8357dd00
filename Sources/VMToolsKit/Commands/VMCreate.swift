#if canImport(Glibc)
import Glibc
#endif

/// `vmcreate`: create VM homes (commands.md §2): configure, create the
/// first disk, start the VM (not with `-n`), then write its `vm.settings`.
/// A failure removes what this command made.
public enum VMCreateCommand: Command {
    public static let spec = CommandSpec(
        name: "vmcreate",
        summary: "create virtual machine homes",
        options: SharedOptions.start,
        operands: "vmhome ...",
        operandCompletion: .directory,
        exitCodes: [(0, "every VM was created"), (1, "a VM could not be created"), (2, "wrong usage")]
    )

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        guard !args.operands.isEmpty else { throw VMToolsError.usage("name missing: give the directory of the new VM") }
        let options = try StartOptions(args, cwd: context.cwd, environment: context.environment)
        let (global, resolver) = try context.loadGlobal(args, commandLine: options.commandLine)
        var failed = false
        for operand in args.operands {
            do {
                try create(operand, options: options, global: global, resolver: resolver, context: context)
            } catch let e as VMToolsError {
                failed = true
                context.console.error(e)
            }
        }
        return failed ? .failure : .success
    }

    static func create(_ operand: String, options: StartOptions, global: GlobalConfig, resolver: SettingsResolver, context: Context) throws {
        // With -i the VM ran in the foreground (an installation, say): keep
        // it, or throw it away and start the creation again.
        while true {
            let kept = try createOnce(operand, options: options, global: global, resolver: resolver, context: context)
            if kept { return }
            context.console.info("starting the creation again")
        }
    }

    /// Returns false when the user threw the new VM away.
    static func createOnce(_ operand: String, options: StartOptions, global: GlobalConfig, resolver: SettingsResolver, context: Context) throws -> Bool {
        var path = try FileSystem.canonicalize(operand, cwd: context.cwd)
        if path.lastPathComponent == global.file("cfg_file_vmsettings") { path = path.deletingLastPathComponent }
        if VMHome.isHome(path, global: global) {
            throw VMToolsError(.failure, path, "already holds a virtual machine; delete it with vmrm first")
        }
        if FileSystem.exists(path), !FileSystem.isDirectory(path) { throw VMToolsError(.failure, path, "exists and is not a directory") }
        let madeHome = !FileSystem.exists(path)
        if madeHome, mkdir(path, 0o755) != 0 {
            throw VMToolsError(.failure, path, "cannot create the directory: \(FileSystem.errnoMessage())")
        }
        var created: [String] = []
        do {
            let lock = try HomeLock.acquire(path, global: global, console: context.console)
            defer { lock.release() }
            var conf = try configure(home: path, options: options, global: global, resolver: resolver, context: context)
            created += conf.createdFiles
            let name = conf.value("vm_name")
            var command = try VMUpCommand.prepare(conf.settings, home: path, children: [], global: global, options: options, context: context,
                                                  createDisks: true)
            created += command.createdFiles
            try VMUpCommand.launch(&command, name: name, options: options, context: context)
            if !command.daemonize, !options.dryRun, conf.prompter.interactive, !conf.prompter.assumeYes,
               !(try conf.prompter.confirm("Keep the virtual machine \(name)")) {
                throw Discarded()
            }
            // vm_boot_order is transient (-C/-D boot the installer once); the writer drops it.
            let entries = conf.recorded.filter { $0.name.hasPrefix("vm_") && $0.name != "vm_name" && $0.name != "vm_home" }
                + command.settingsToSave.map { SettingsDocument.Entry($0.name, $0.value) }
            let size = conf.value("vm_storage_hdd1_createsize")
            let doc = SettingsDocument(comment: "initial creation", templates: conf.templates, name: name, entries: entries,
                                       initialSizes: size.isEmpty ? [:] : [1: size])
            try doc.write(lock, global: global)
            conf.recorded.removeAll()
            context.console.info("\(name): virtual machine created")
            return true
        } catch {
            for f in created { try? FileSystem.removeFile(f) }
            if madeHome { FileSystem.removeTree(path) }
            if error is Discarded { return false }
            throw error
        }
    }

    struct Discarded: Error {}

    /// Templates, the command line, `-c`/`-d` images and the configure
    /// modules (settings.md §2.6), recording what the new file will hold.
    static func configure(home: String?, options: StartOptions, global: GlobalConfig, resolver: SettingsResolver,
                          context: Context, name: String? = nil) throws -> Configuration {
        var table = global.settings
        if let home {
            table.set("vm_home", home, .derived("the VM's directory"))
            table.set("vm_name", home.lastPathComponent, .derived("the directory name"))
        } else if let name {
            table.set("vm_name", name, .derived("the image name"))
        }
        let prompter = Prompter(assumeYes: table.isYes("cfg_ui_assumeyes") || options.commandLine.value("cfg_ui_assumeyes") == "yes",
                                console: context.console, stdin: context.stdin)
        var conf = Configuration(settings: table, templates: options.commandLine.templates, home: home, global: global,
                                 environment: context.environment, prompter: prompter, console: context.console)
        for e in options.commandLine.entries {
            conf.settings.set(e.name, e.value, .commandLine(e.flag))
            conf.recorded.append(.init(e.name, e.value))
        }
        let before = conf.settings
        for e in try options.placeImages(into: &conf.settings) where !e.name.hasSuffix("_createsize") && before.value(e.name) != e.value {
            conf.recorded.append(e)
        }
        for m in try ModuleRegistry.configureModules(.configureTemplates, settings: conf.settings, paths: global.paths, console: context.console) {
            try m.configure(&conf)
        }
        conf.templates = try resolver.applyTemplates(conf.templates, to: &conf.settings, global: global)
        for e in options.commandLine.entries { conf.settings.set(e.name, e.value, .commandLine(e.flag)) }
        for m in try ModuleRegistry.configureModules(.configureSettings, settings: conf.settings, paths: global.paths, console: context.console) {
            try m.configure(&conf)
        }
        return conf
    }
}
