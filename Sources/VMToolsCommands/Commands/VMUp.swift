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
        options: SharedOptions.start + [OptionSpec("w", "wait until the guest's SSH server answers (cfg_limit_waitguest)")],
        operands: "[path ...]",
        operandCompletion: .file,
        exitCodes: [(0, "every VM started"), (1, "a VM could not be started"), (2, "wrong usage")]
    )

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        var options = try StartOptions(args, cwd: context.cwd, environment: context.environment)
        let (global, resolver) = try context.loadGlobal(args, commandLine: options.commandLine)
        // -n downloads nothing: a NOTICE says what a start would (vmup(1), IMAGES BY NAME).
        try CatalogImages.resolve(&options, dryRun: options.dryRun, global: global, context: context)
        let console = context.console
        var failed = false, misused = false
        let waitGuest = args.has("w")
        if waitGuest, args.has("i") { throw VMToolsError.usage("-w cannot be combined with -i: QEMU would run in the foreground") }
        for operand in args.operands.isEmpty ? ["."] : args.operands {
            do {
                let ready = try start(operand, options: options, global: global, resolver: resolver, context: context, waitGuest: waitGuest)
                // After the lock is released: the wait may be long, and vmdown must not wait on it.
                if let ready {
                    try GuestWait.waitForSSH(vm: ready.vm, address: ready.address, port: ready.port, seconds: ready.seconds, console: console)
                }
            } catch let e as VMToolsError {
                failed = true
                misused = misused || e.code == .usage
                console.error(e)
            }
        }
        return misused ? .usage : failed ? .failure : .success
    }

    /// With `-w`, where the guest's SSH forward listens and how long to wait for it.
    struct GuestEndpoint {
        var vm: String
        var address: String
        var port: Int
        var seconds: Int
    }

    /// request → configuration → plan → execution (Docs/ARCHITECTURE.md).
    static func start(_ operand: String, options: StartOptions, global: GlobalConfig, resolver: SettingsResolver,
                      context: Context, waitGuest: Bool = false) throws -> GuestEndpoint? {
        let request = try LaunchRequest.start(operand, options: options, global: global, context: context)
        switch request.target {
        case .home(let home): return try startHome(home, options: request.options, global: global, resolver: resolver, context: context, waitGuest: waitGuest)
        case .bare(let name): return try startBare(name, options: request.options, global: global, resolver: resolver, context: context, waitGuest: waitGuest)
        case .newHome(let home): throw VMToolsError(.failure, home, "not a VM home; create one with vmcreate")
        }
    }

    static func startHome(_ home: String, options: StartOptions, global: GlobalConfig, resolver: SettingsResolver,
                          context: Context, waitGuest: Bool) throws -> GuestEndpoint? {
        // The lock covers loading, planning and QEMU's start-up; once QEMU has
        // daemonised, its own lock on the pid file says "running".
        let lock = try HomeLock.acquire(home, global: global, console: context.console, readOnlyHome: true)
        defer { lock.release() }
        if let p = RunningState.process(home: home, global: global) {
            throw VMToolsError(.failure, home, "cannot start: it is already running (pid \(p.pid))")
        }
        let vm = try LaunchConfigurator.existing(home: home, options: options, global: global, resolver: resolver)
        let hostPaths = try LaunchPlanner.checkHostPaths(vm, global: global, environment: context.environment)
        if let last = hostPaths.refusals.last {
            hostPaths.refusals.dropLast().forEach(context.console.error)
            throw last
        }
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
                                             hostPaths: hostPaths.paths, resume: true, dryRun: options.dryRun, context: context)
        var executor = LaunchExecutor(command, name: vm.name, console: context.console)
        let seconds = try waitGuest ? waitSeconds(executor.plan, command: command, subject: home) : 0
        if options.dryRun {
            try executor.checkWrites()
            executor.printPlan()
            return nil
        }
        try executor.prepare()
        try executor.start()
        try executor.saveSettings(home: home)
        return try endpoint(executor, vm: home, seconds: seconds, waitGuest: waitGuest)
    }

    /// `-w` needs a daemonised QEMU and an SSH forward; checked before QEMU starts.
    static func waitSeconds(_ plan: LaunchPlan, command: QemuCommand, subject: String) throws -> Int {
        guard plan.forwardsSSH else {
            throw VMToolsError(.usage, subject, "-w needs a forward to guest port 22 (vm_networking_ifaceN_forward, such as tcp::22)")
        }
        guard command.daemonize else { throw VMToolsError(.usage, subject, "-w needs QEMU in the background (vm_qemu_daemonize=yes)") }
        return try command.vm.waitGuestSeconds()
    }

    static func endpoint(_ executor: LaunchExecutor, vm: String, seconds: Int, waitGuest: Bool) throws -> GuestEndpoint? {
        guard waitGuest else { return nil }
        guard let e = executor.sshEndpoint else {
            throw VMToolsError(.failure, vm, "cannot wait for the guest: QEMU did not say which port its SSH forward took; the VM keeps running")
        }
        return GuestEndpoint(vm: vm, address: e.address, port: e.port, seconds: seconds)
    }

    /// A disk image, ISO, device or URL booted without a VM home: configured
    /// as a new VM (vm.settings(5)), nothing is saved.
    static func startBare(_ name: String, options: StartOptions, global: GlobalConfig, resolver: SettingsResolver,
                          context: Context, waitGuest: Bool) throws -> GuestEndpoint? {
        // A catalog image's overlay goes into the run-time directory: made before the configuration then.
        let early = options.catalog.isEmpty ? nil : try LaunchExecutor.bareRunDirectory(dryRun: options.dryRun, global: global)
        var runDirectory = early?.path ?? "", setup = early?.flock
        defer { setup?.release() }
        var executor: LaunchExecutor
        var seconds = 0
        do {
            let conf = try LaunchConfigurator.new(home: nil, name: name, options: options, global: global, resolver: resolver,
                                                  context: context, runDirectory: early?.path)
            // An archive unpacked for an import goes with this start (the executor removes it once converted).
            defer { for w in conf.workDirectories { w.remove() } }
            let hostPaths = try LaunchPlanner.checkBareHostPaths(conf.settings, global: global, environment: context.environment)
            if let last = hostPaths.refusals.last {
                hostPaths.refusals.dropLast().forEach(context.console.error)
                throw last
            }
            if early == nil { (runDirectory, setup) = try LaunchExecutor.bareRunDirectory(dryRun: options.dryRun, global: global) }
            let command = try LaunchPlanner.plan(conf.settings, home: nil, runDirectory: runDirectory, children: [], global: global,
                                                 hostPaths: hostPaths.paths, conversions: conf.conversions, dryRun: options.dryRun, context: context)
            executor = LaunchExecutor(command, name: conf.vm.name, console: context.console)
            if waitGuest { seconds = try waitSeconds(executor.plan, command: command, subject: name) }
            if options.dryRun {
                try executor.checkWrites()
                executor.printPlan()
                return nil
            }
            try executor.prepare()
        } catch {
            if setup != nil { FileSystem.removeTree(runDirectory) }
            throw error
        }
        // A converted image goes if QEMU does not start, as the executor's own file.
        do { try executor.start() } catch {
            // QEMU is not running: its directory is debris.
            FileSystem.removeTree(runDirectory)
            throw error
        }
        return try endpoint(executor, vm: name, seconds: seconds, waitGuest: waitGuest)
    }
}
