import VMToolsCore
import VMToolsQEMU
import VMToolsLaunch

#if canImport(Glibc)
import Glibc
#endif

/// `vmup`: start VMs, or boot disk images and ISO files directly (vmup(1)).
/// Each operand is handled on its own.
public enum VMUpCommand: Command {
    public static let spec = CommandSpec(
        name: "vmup",
        summary: "start virtual machines, or boot disk images and ISO files directly",
        options: SharedOptions.start,
        operands: "[path ...]",
        operandCompletion: .file,
        exitCodes: [(0, "every VM started"), (1, "a VM could not be started"), (2, "wrong usage")]
    )

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        let options = try StartOptions(args, cwd: context.cwd, environment: context.environment)
        let (global, resolver) = try context.loadGlobal(args, commandLine: options.commandLine)
        let console = context.console
        var failed = false
        for operand in args.operands.isEmpty ? ["."] : args.operands {
            do {
                try start(operand, options: options, global: global, resolver: resolver, context: context)
            } catch let e as VMToolsError {
                failed = true
                console.error(e)
            }
        }
        return failed ? .failure : .success
    }

    /// request → configuration → plan → execution (Docs/ARCHITECTURE.md).
    static func start(_ operand: String, options: StartOptions, global: GlobalConfig, resolver: SettingsResolver,
                      context: Context) throws {
        let request = try LaunchRequest.start(operand, options: options, global: global, context: context)
        switch request.target {
        case .home(let home): try startHome(home, options: request.options, global: global, resolver: resolver, context: context)
        case .bare(let name): try startBare(name, options: request.options, global: global, resolver: resolver, context: context)
        case .newHome(let home): throw VMToolsError(.failure, home, "not a VM home; create one with vmcreate")
        }
    }

    static func startHome(_ home: String, options: StartOptions, global: GlobalConfig, resolver: SettingsResolver,
                          context: Context) throws {
        // The lock covers loading, planning and QEMU's start-up; once QEMU has
        // daemonised, its own lock on the pid file says "running".
        let lock = try HomeLock.acquire(home, global: global, console: context.console, readOnlyHome: true)
        defer { lock.release() }
        if let p = RunningState.process(home: home, global: global) {
            throw VMToolsError(.failure, home, "cannot start: it is already running (pid \(p.pid))")
        }
        let vm = try LaunchConfigurator.existing(home: home, options: options, global: global, resolver: resolver)
        let children = try ChildList.read(home: home, global: global).children
        // A home on read-only media (Docs/vmup.1): its disks cannot be
        // written, its run-time files go to its run-time directory.
        var runDirectory = home
        if !FileSystem.isWritable(home) {
            // A bad rwmode is storage_hdd's to report, naming its file and line.
            guard (try? VMSettings(vm.settings).rwMode()) != .rw else {
                throw VMToolsError(.failure, home, "cannot start read-write: the VM home is not writable; start it with -s (snapshot) or -r (read-only disks)")
            }
            runDirectory = lock.lockDirectory
        }
        let command = try LaunchPlanner.plan(vm.settings, home: home, runDirectory: runDirectory, children: children, global: global,
                                             dryRun: options.dryRun, context: context)
        var executor = LaunchExecutor(command, name: vm.name, console: context.console)
        if options.dryRun {
            executor.printPlan()
            return
        }
        try executor.prepare()
        try executor.start()
        try executor.saveSettings(home: home)
    }

    /// A disk image, ISO, device or URL booted without a VM home: configured
    /// as a new VM (vm.settings(5)), nothing is saved.
    static func startBare(_ name: String, options: StartOptions, global: GlobalConfig, resolver: SettingsResolver,
                          context: Context) throws {
        let conf = try LaunchConfigurator.new(home: nil, name: name, options: options, global: global, resolver: resolver, context: context)
        let (runDirectory, setup) = try LaunchExecutor.bareRunDirectory(dryRun: options.dryRun, global: global)
        defer { setup?.release() }
        var executor: LaunchExecutor
        do {
            let command = try LaunchPlanner.plan(conf.settings, home: nil, runDirectory: runDirectory, children: [], global: global,
                                                 dryRun: options.dryRun, context: context)
            executor = LaunchExecutor(command, name: conf.vm.name, console: context.console)
            if options.dryRun {
                executor.printPlan()
                return
            }
            try executor.prepare()
        } catch {
            if setup != nil { FileSystem.removeTree(runDirectory) }
            throw error
        }
        // A converted image goes if QEMU does not start, as the executor's own files.
        executor.adopt(conf.createdFiles)
        do { try executor.start() } catch {
            // QEMU is not running: its directory is debris.
            FileSystem.removeTree(runDirectory)
            throw error
        }
    }
}
