import VMToolsCore
import VMToolsLaunch

#if canImport(Glibc)
import Glibc
#endif

/// `vmcreate`: create VM homes (vmcreate(1)): configure, create the first
/// disk, start the VM (not with `-n`), then write its `vm.settings`.
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
        var options = try StartOptions(args, cwd: context.cwd, environment: context.environment)
        let (global, resolver) = try context.loadGlobal(args, commandLine: options.commandLine)
        // Downloaded once for all the operands; -n too, as it makes the disks (vmcreate(1)).
        try CatalogImages.resolve(&options, dryRun: false, global: global, context: context)
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
        let request = try LaunchRequest.create(operand, options: options, global: global, context: context)
        guard case .newHome(let path) = request.target else { throw VMToolsError(.failure, operand, "not a new VM home") }
        let madeHome = !FileSystem.exists(path)
        if madeHome, mkdir(path, 0o755) != 0 {
            throw VMToolsError(.failure, path, "cannot create the directory: \(FileSystem.errnoMessage())")
        }
        var created: [String] = []
        // The cached images the new VM rests on list it as a user (vmimage(1), CACHE).
        let cache = ImageCache(environment: context.environment)
        var bases: [ImageCache.Image] = []
        do {
            let lock = try HomeLock.acquire(path, global: global, console: context.console)
            defer { lock.release() }
            // request → configuration → plan → execution (Docs/ARCHITECTURE.md).
            var conf = try LaunchConfigurator.new(home: path, name: nil, options: request.options, global: global, resolver: resolver, context: context)
            // An archive unpacked for an import goes with this attempt (the executor removes it once converted).
            defer { for w in conf.workDirectories { w.remove() } }
            // An image from the command line would be accepted below with
            // the files it names: those need cfg_host_paths (vm.settings(5), HOST PATHS).
            let hostPaths = try LaunchPlanner.checkBareHostPaths(conf.settings, home: path, global: global, environment: context.environment)
            if let last = hostPaths.refusals.last {
                hostPaths.refusals.dropLast().forEach(context.console.error)
                throw last
            }
            let name = conf.vm.name
            let command = try LaunchPlanner.plan(conf.settings, home: path, runDirectory: nil, children: [], global: global,
                                                 hostPaths: hostPaths.paths, conversions: conf.conversions, dryRun: options.dryRun, context: context)
            var executor = LaunchExecutor(command, name: name, console: context.console)
            // Listed before the overlay exists, so that vmimage -r cannot remove the base in between.
            for base in CatalogImages.bases(request.options.catalog, of: conf) {
                try cache.addUser(path, of: base.digest)
                bases.append(base)
            }
            // vmcreate -n makes the home and its disk, and starts nothing (vmcreate(1)).
            try executor.prepare(generating: !options.dryRun)
            created += executor.createdFiles
            if options.dryRun {
                executor.announce()
            } else {
                try executor.start()
            }
            if !command.daemonize, !options.dryRun, conf.prompter.interactive, !conf.prompter.assumeYes,
               !(try conf.prompter.confirm("Keep the virtual machine \(name)")) {
                throw Discarded()
            }
            // vm_boot_order is transient (-C/-D boot the installer once); the writer drops it.
            let entries = conf.recorded.filter { SettingKey.isRecorded($0.name) }
                + executor.plan.settingsToSave.map { SettingsDocument.Entry($0.name, $0.value) }
            let size = conf.vm.hdd(1).createsizeText
            let doc = SettingsDocument(comment: "initial creation", templates: conf.templates, name: name, entries: entries,
                                       initialSizes: size.isEmpty ? [:] : [1: size])
            try doc.write(lock, global: global)
            // What the user wrote on this command line is the user's decision (vm.settings(5), HOST PATHS).
            try HostPathPolicy.accept(home: path, global: global, environment: context.environment)
            conf.recorded.removeAll()
            context.console.info("\(name): virtual machine created")
            return true
        } catch {
            for base in bases { try? cache.removeUser(path, of: base.digest) }
            for f in created { try? FileSystem.removeFile(f) }
            if madeHome { FileSystem.removeTree(path) }
            if error is Discarded { return false }
            throw error
        }
    }

    struct Discarded: Error {}
}
