#if canImport(Glibc)
import Glibc
#endif

/// `vmup`: start VMs, or boot disk images and ISO files directly
/// (commands.md §1). Each operand is handled on its own.
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

    static func start(_ operand: String, options: StartOptions, global: GlobalConfig, resolver: SettingsResolver,
                      context: Context) throws {
        let backend = StorageBackend(operand)
        if !backend.isRemote {
            let path: String
            do {
                path = try FileSystem.canonicalize(backend.path(home: context.cwd, environment: context.environment), cwd: context.cwd)
            } catch let e as VMToolsError where e.subject != nil && e.subject != operand {
                // The operand as typed (`invalid:disc.iso` is a file name, vmup(1)), then the part that is missing.
                throw VMToolsError(e.code, operand, "no such file or directory (\(e))")
            }
            if FileSystem.isDirectory(path) {
                guard VMHome.isHome(path, global: global) else {
                    throw VMToolsError(.failure, path, "not a VM home (no \(global.file("cfg_file_vmsettings"))); create one with vmcreate")
                }
                try startHome(path, options: options, global: global, resolver: resolver, context: context)
                return
            }
            guard FileSystem.exists(path) else { throw VMToolsError(.failure, operand, "no such file or directory") }
        }
        try startBare(operand, options: options, global: global, resolver: resolver, context: context)
    }

    static func startHome(_ home: String, options: StartOptions, global: GlobalConfig, resolver: SettingsResolver,
                          context: Context) throws {
        // The lock covers loading, building and QEMU's start-up; once QEMU has
        // daemonised, its own lock on the pid file says "running".
        let lock = try HomeLock.acquire(home, global: global, console: context.console, readOnlyHome: true)
        defer { lock.release() }
        if let p = RunningState.process(home: home, global: global) {
            throw VMToolsError(.failure, home, "cannot start: it is already running (pid \(p.pid))")
        }
        var vm = try resolver.loadVM(home: home, global: global)
        try options.placeImages(into: &vm.settings)
        let children = try ChildList.read(home: home, global: global).children
        // A home on read-only media (Docs/vmup.1): its disks cannot be
        // written, its run-time files go to its run-time directory.
        var runDirectory = home
        if !FileSystem.isWritable(home) {
            guard vm.settings.value("vm_storage_rwmode") != "rw" else {
                throw VMToolsError(.failure, home, "cannot start read-write: the VM home is not writable; start it with -s (snapshot) or -r (read-only disks)")
            }
            runDirectory = lock.lockDirectory
        }
        var command = try prepare(vm.settings, home: home, runDirectory: runDirectory, children: children, global: global,
                                  options: options, context: context)
        try launch(&command, name: vm.name, options: options, context: context)
        try saveSettings(command, home: home, global: global, context: context)
    }

    /// A disk image, ISO, device or URL booted without a VM home: the
    /// configure modules run as for a new VM (settings.md §2.6), nothing is saved.
    static func startBare(_ operand: String, options: StartOptions, global: GlobalConfig, resolver: SettingsResolver,
                          context: Context) throws {
        let b = StorageBackend(operand)
        let location = b.isRemote ? operand : (try FileSystem.canonicalize(b.path(home: context.cwd, environment: context.environment), cwd: context.cwd))
        let isISO = b.isRemote ? urlPath(b.location).lowercased().hasSuffix(".iso") : DiskImageKind.isISO(location)
        var bare = options
        if isISO {
            // The prefix stays, so that storage_cdrom refuses rw: and snap:.
            bare.commandLine.set("vm_storage_cdrom1_backend", b.isRemote ? operand : (b.prefix.map { $0 + ":" } ?? "") + location, flag: "vmup FILE")
            bare.commandLine.set("vm_storage_cdrom1_enable", "yes", flag: "vmup FILE")
            bare.commandLine.set("vm_boot_order", "d", flag: "vmup FILE")
        } else {
            bare.commandLine.set("vm_storage_hdd1_backend", b.isRemote ? operand : (b.prefix.map { $0 + ":" } ?? "") + location, flag: "vmup FILE")
            bare.commandLine.set("vm_storage_hdd1_createsize", "", flag: "vmup FILE")
            bare.commandLine.set("vm_storage_hdd1_enable", "yes", flag: "vmup FILE")
        }
        let name = b.isRemote ? (b.location.split(separator: "/").last.map(String.init) ?? b.location) : location.lastPathComponent
        // (For URLs the original names the VM after the last component as typed, query included.)
        let conf = try VMCreateCommand.configure(home: nil, options: bare, global: global, resolver: resolver, context: context, name: name)
        // A run-time directory of its own, so vmdown, vmmon and vmps reach it
        // as any VM (Docs/vmup.1); the flock keeps another vmup's clean-up off it.
        var runDirectory = RuntimeDirectory.base.appendingPathComponent("bare-XXXXXX")
        var setup: DirectoryFlock?
        if !options.dryRun {
            RuntimeDirectory.removeStale(global: global)
            runDirectory = try RuntimeDirectory.makeBare()
            setup = DirectoryFlock(runDirectory)
        }
        defer { setup?.release() }
        var command: QemuCommand
        do {
            command = try prepare(conf.settings, home: nil, runDirectory: runDirectory, children: [], global: global,
                                  options: options, context: context)
        } catch {
            if setup != nil { FileSystem.removeTree(runDirectory) }
            throw error
        }
        command.createdFiles += conf.createdFiles
        try launch(&command, name: conf.value("vm_name"), options: options, context: context)
    }

    /// The path part of a URL: what comes before `?`, `#` or `&`.
    static func urlPath(_ url: String) -> String {
        String(url.prefix { $0 != "?" && $0 != "#" && $0 != "&" })
    }

    static func prepare(_ settings: SettingsTable, home: String?, runDirectory: String? = nil, children: [String], global: GlobalConfig,
                        options: StartOptions, context: Context, createDisks: Bool = false) throws -> QemuCommand {
        let accel = try Accelerator.choose(settings)
        var command = QemuCommand(settings: settings, home: home, global: global, environment: context.environment,
                                  accelerator: accel, children: children, dryRun: options.dryRun)
        command.createsDisks = createDisks || !options.dryRun
        command.runDirectory = runDirectory ?? home
        if accel.fellBack { command.notices.append("KVM is not usable (\(accel.reason)): using TCG, where -cpu host becomes -cpu max") }
        do {
            try command.build(ModuleRegistry.buildcmdModules(settings, paths: global.paths, console: context.console))
        } catch {
            removeFiles(command.createdFiles + command.temporaryFiles)
            throw error
        }
        return command
    }

    static func launch(_ command: inout QemuCommand, name: String, options: StartOptions, context: Context) throws {
        let console = context.console
        for n in command.notices { console.notice(n) }
        if console.verbosity >= 3 {
            console.print()
            console.print("Qemu command-line:")
            console.print(command.argv.map(shellQuote).joined(separator: " "))
        }
        defer { removeFiles(command.temporaryFiles) }
        guard !options.dryRun, let exe = command.argv.first, let runDirectory = command.runDirectory else { return }
        let global = command.global
        let pidFile = runDirectory.appendingPathComponent(global.file("cfg_file_pid"))
        try FileSystem.removeFile(pidFile, sync: false)
        let qemu = Subprocess(exe, Array(command.argv.dropFirst()), workingDirectory: runDirectory)
        // Sockets, pid file and logs QEMU creates are 0600, whatever the
        // caller's umask (Docs/vmup.1, "Files in the VM home"): a socket's
        // mode is 0777 less the umask, so 077 would leave them 0700.
        let callerUmask = umask(0o177)
        defer { umask(callerUmask) }
        if !command.daemonize {
            console.info("\(name): virtual machine running in the foreground")
            let status: Int32
            do { status = try qemu.runInteractive() } catch {
                removeRunFiles(runDirectory, global: global)
                throw error
            }
            // QEMU is gone: what it left is debris.
            removeRunFiles(runDirectory, global: global)
            guard status == 0 else { throw VMToolsError(.failure, name, "QEMU exited with status \(status)") }
            return
        }
        let logs = [global.file("cfg_file_serial")].filter { log in command.argv.contains { $0.contains("./" + log) } }
        let newLogs = logs.map { runDirectory.appendingPathComponent($0) }.filter { !FileSystem.lexists($0) }
        for log in logs { createPrivate(runDirectory.appendingPathComponent(log)) }
        let r: Subprocess.Result
        do { r = try qemu.run() } catch {
            removeRunFiles(runDirectory, global: global)
            throw error
        }
        guard r.status == 0 else {
            removeFiles(command.createdFiles + newLogs)
            removeRunFiles(runDirectory, global: global)
            let why = r.stderrText.split(separator: "\n").first.map(String.init) ?? "exit status \(r.status)"
            throw VMToolsError(.failure, command.home ?? name, "QEMU failed to start: \(why)")
        }
        // A daemonising QEMU sets its umask to 027: its sockets are made ours alone here.
        for name in ["cfg_file_pid", "cfg_file_monitor", "cfg_file_qmp"].map({ global.file($0) }) + logs {
            let path = runDirectory.appendingPathComponent(name)
            var st = stat()
            if lstat(path, &st) == 0, [S_IFSOCK, S_IFREG].contains(st.st_mode & S_IFMT) { chmod(path, 0o600) }
        }
        let pid = RunningState.process(pidFile: pidFile)?.pid
        console.info("\(name): virtual machine started" + (pid.map { " (pid \($0))" } ?? ""))
        DisplayModule.announce(command, console: console)
    }

    /// Writes what the start made part of the VM (vm.settings(5): a disk
    /// made from a createsize alone) into its settings file, under its lock.
    static func saveSettings(_ command: QemuCommand, home: String, global: GlobalConfig, context: Context) throws {
        guard !command.settingsToSave.isEmpty else { return }
        var patch = SettingsPatch()
        for (name, value) in command.settingsToSave { patch.values[name] = value }
        let tx = Transaction(anchor: home, environment: context.environment)
        do {
            try patch.write(to: home, global: global, tx)
            tx.commit()
        } catch {
            tx.rollback()
            throw error
        }
    }

    /// A log QEMU will append to or truncate, created 0600 beforehand (QEMU
    /// keeps the mode of an existing file).
    static func createPrivate(_ path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        fchmod(fd, 0o600)
        close(fd)
    }

    /// After QEMU has exited (or failed to start): its sockets and pid file,
    /// and a run-time directory of its own. The caller holds the VM's lock,
    /// or the flock of a bare boot's directory, so no other QEMU uses them.
    static func removeRunFiles(_ dir: String, global: GlobalConfig) {
        if RuntimeDirectory.isOwnRunDirectory(dir) {
            RuntimeDirectory.removeFiles(dir, global: global)
            RuntimeDirectory.removeIfUnused(dir, global: global)
            return
        }
        for name in ["cfg_file_pid", "cfg_file_monitor", "cfg_file_qmp"] {
            let path = dir.appendingPathComponent(global.file(name))
            var st = stat()
            if lstat(path, &st) == 0, [S_IFSOCK, S_IFREG].contains(st.st_mode & S_IFMT) { unlink(path) }
        }
    }

    static func removeFiles(_ files: [String]) {
        for f in files { try? FileSystem.removeFile(f) }
    }
}
