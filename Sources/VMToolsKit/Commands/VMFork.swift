#if canImport(Glibc)
import Glibc
#endif

/// `vmfork source destination ...`: linked clones (commands.md §7). Each new
/// VM names the source as its parent, holds only what differs (new MACs, an
/// empty overlay on each disk, `-o` values) and is listed in the source's
/// `childs.lst`. Forking is constant-time: no disk data is copied.
///
/// Copy modes (`-a`, `-c`) and recursion (`-R`, `-r`) are not built yet.
public enum VMForkCommand: Command {
    public static let spec = CommandSpec(
        name: "vmfork",
        summary: "fork virtual machines into linked clones",
        options: SharedOptions.clone,
        operands: "source destination ...",
        operandCompletion: .directory,
        exitCodes: [(0, "every fork was made"), (1, "a fork failed (and was undone)"), (2, "wrong usage"),
                    (70, "a copy mode or recursion was asked for: not implemented yet")]
    )

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        guard args.operands.count >= 2 else { throw VMToolsError.usage("a source and at least one destination are needed") }
        if [args.has("a"), args.has("c"), args.has("f")].filter({ $0 }).count > 1 {
            throw VMToolsError.usage("-a, -c and -f cannot be combined")
        }
        if args.has("n") && !args.has("a") { throw VMToolsError.usage("-n goes with -a only") }
        for flag: Character in ["a", "c", "R", "r"] where args.has(flag) {
            throw VMToolsError(.notImplemented, nil, "vmfork -\(flag) (copies and recursion) is not implemented yet in this version of vmtools")
        }
        var cli = CommandLineSettings()
        for o in args.occurrences {
            if o.letter == "o" { try cli.parseOverride(o.value ?? "") }
            if o.letter == "y" { cli.override("cfg_ui_assumeyes", "yes", flag: "-y") }
        }
        let (global, resolver) = try context.loadGlobal(args, commandLine: cli)
        let modules = try ModuleRegistry.cloneModules(global.settings, add: args.values("m"), remove: args.values("M"), paths: global.paths)
        let source = try VMHome.locate(args.operands[0], cwd: context.cwd, global: global)
        var failed = false
        for destination in args.operands.dropFirst() {
            do {
                let made = try fork(source, to: destination, cli: cli, modules: modules, keepUnique: args.has("k"), snapshot: args.has("s"),
                                    global: global, resolver: resolver, context: context)
                context.console.info("\(made): forked from '\(source)'")
            } catch let e as VMToolsError {
                if e.code == .notImplemented { throw e }
                failed = true
                context.console.error(e)
            }
        }
        return failed ? .failure : .success
    }

    /// One fork, all or nothing: on any error every step made is undone.
    static func fork(_ source: String, to destination: String, cli: CommandLineSettings, modules: [any CloneModule.Type],
                     keepUnique: Bool, snapshot: Bool, global: GlobalConfig, resolver: SettingsResolver, context: Context) throws -> String {
        // The source's lock also guards its childs.lst while we add to it.
        let sourceLock = try HomeLock.acquire(source, global: global, console: context.console)
        defer { sourceLock.release() }
        if let p = RunningState.process(home: source, global: global) {
            throw VMToolsError(.failure, source, "is running (pid \(p.pid)); stop it before forking, its disks are in use")
        }
        let home = try newHome(for: source, at: destination, cwd: context.cwd, global: global)
        let transaction = Transaction()
        if !FileSystem.exists(home) {  // else: an empty directory, reused
            guard mkdir(home, 0o755) == 0 else { throw VMToolsError(.failure, home, "cannot create: \(FileSystem.errnoMessage())") }
            transaction.onRollback("remove \(home)") { _ = try? Subprocess("/bin/rm", ["-rf", "--", home]).run() }
        }
        let lock = try HomeLock.acquire(home, global: global, console: context.console)
        defer { lock.release() }
        let vm = try resolver.loadVM(home: source, global: global)
        var job = CloneJob(action: .fork, source: vm, destination: home, keepUnique: keepUnique, snapshot: snapshot,
                           environment: context.environment, console: context.console, transaction: transaction)
        for m in modules { try m.clone(&job) }
        for e in cli.entries where e.name.hasPrefix("vm_") && e.name != "vm_name" { job.override(e.name, e.value) }
        let name = cli.value("vm_name") ?? home.lastPathComponent
        let doc = SettingsDocument(comment: "Forked from '\(vm.name)':\n\(source)", parent: source, name: name, entries: job.overrides)
        try doc.write(lock, global: global)
        let settingsFile = home.appendingPathComponent(global.file("cfg_file_vmsettings"))
        transaction.onRollback("remove \(settingsFile)") { try? FileSystem.removeFile(settingsFile) }
        var children = try ChildList.read(home: source, global: global)
        try children.add(home)
        try children.write(sourceLock, global: global)
        transaction.commit()
        return home
    }

    /// An existing directory receives `<dir>/<source name>` (or `_1`, `_2` …);
    /// anything else is the new home's own path (commands.md §7, §0.6).
    static func newHome(for source: String, at destination: String, cwd: String, global: GlobalConfig) throws -> String {
        let dest = try FileSystem.canonicalize(destination, cwd: cwd)
        guard FileSystem.isDirectory(dest) else {
            guard FileSystem.isDirectory(dest.deletingLastPathComponent), FileSystem.isWritable(dest.deletingLastPathComponent) else {
                throw VMToolsError(.failure, dest, "its directory does not exist or is not writable")
            }
            if FileSystem.exists(dest) { throw VMToolsError(.failure, dest, "exists and is not a directory") }
            return dest
        }
        // The source itself is never free (it holds vm.settings), so a fork
        // into its own directory lands beside or inside it, never on it.
        return FileSystem.newPath(in: dest, base: source.lastPathComponent) { !FileSystem.exists($0) || isEmptyDirectory($0) }
    }

    static func isEmptyDirectory(_ path: String) -> Bool {
        FileSystem.isDirectory(path) && ((try? FileSystem.listDirectory(path).isEmpty) ?? false)
    }
}
