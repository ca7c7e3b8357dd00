import VMToolsCore
import VMToolsQEMU
import VMToolsLaunch

#if canImport(Glibc)
import Glibc
#endif

/// `vmrm`: delete VMs (vmrm(1)). A VM with children needs `-r`, which
/// deletes the descendants first; a running VM is never deleted. vmtools'
/// own files go first, then (unless `-k`) everything else in the home, each
/// entry after a confirmation unless `-y`.
public enum VMRmCommand: Command {
    public static let spec = CommandSpec(
        name: "vmrm",
        summary: "delete virtual machines",
        options: [
            OptionSpec("k", "keep disk images and unknown files: delete only vmtools' own files"),
            OptionSpec("r", "also delete every descendant VM"),
            OptionSpec("y", "assume yes: delete without asking"),
        ],
        operands: "vmhome ...",
        operandCompletion: .home,
        exitCodes: [(0, "every VM was deleted"), (1, "an error occurred"), (2, "wrong usage"), (3, "the user kept something")]
    )

    /// What the command line asks for (vmrm(1)).
    struct Options {
        var recursive: Bool
        /// `-k`: delete only vmtools' own files.
        var keep: Bool
        var commandLine: CommandLineSettings

        init(_ args: ParsedArguments) throws {
            guard !args.operands.isEmpty else { throw VMToolsError.usage("name the VM homes to delete") }
            recursive = args.has("r")
            keep = args.has("k")
            commandLine = try SharedOptions.settings(args)
        }
    }

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        let options = try Options(args)
        let (global, resolver) = try context.loadGlobal(args, commandLine: options.commandLine)
        Interrupt.block()
        let prompter = Prompter(assumeYes: global.typed.assumeYes, console: context.console, stdin: context.stdin)
        var status = ExitCode.success
        for operand in args.operands {
            do {
                let home = try VMHome.locate(operand, cwd: context.cwd, global: global)
                var job = Removal(global: global, resolver: resolver, prompter: prompter, console: context.console, recursive: options.recursive,
                                  keep: options.keep, environment: context.environment)
                try job.run(home)
                if job.keptSomething { status = status == .failure ? .failure : .soft }
            } catch is Removal.Cancelled {
                status = status == .failure ? .failure : .soft
            } catch let e as VMToolsError {
                status = .failure
                context.console.error(e)
            }
        }
        return status
    }

    /// One operand, with its descendants under `-r`, is one transaction:
    /// every entry deleted is first moved into a backup directory beside
    /// the operand's home (so it must be on the same filesystem) and only
    /// deleted when everything went through. A failure, a refusal or Ctrl-C
    /// puts it all back; after a crash `vmfix -b` does.
    struct Removal {
        var global: GlobalConfig
        /// Loads a VM to count its snapshots (vmrm(1)).
        var resolver: SettingsResolver
        var prompter: Prompter
        var console: Console
        var recursive: Bool
        var keep: Bool
        /// Finds the image cache a VM's disks rest on (`HOME`, `XDG_CACHE_HOME`).
        var environment: [String: String]
        var keptSomething = false
        var deleted: [String] = []
        /// How many snapshots each deleted VM held.
        var snapshotCounts: [String: Int] = [:]

        struct Cancelled: Error {}

        mutating func run(_ home: String) throws {
            let locks = LockSet(global: global, console: console)
            let tx = Transaction(anchor: home.deletingLastPathComponent)
            let users = ImageUserChanges(global: global, environment: environment)
            try tx.run(holding: locks, users: users) { try delete(home, depth: 0, locks, tx, users) }
            for h in deleted {
                if FileSystem.exists(h) {
                    console.notice("\(h): not empty, so the directory itself is kept")
                }
                console.info("\(h): virtual machine deleted" + Self.withSnapshots(snapshotCounts[h] ?? 0, kept: keep))
            }
        }

        mutating func delete(_ home: String, depth: Int, _ locks: LockSet, _ tx: Transaction, _ users: ImageUserChanges) throws {
            let limit = global.typed.nestingLimit
            guard depth < limit else { throw VMToolsError(.failure, home, "children nested deeper than cfg_limit_nesting (\(limit)); is there a loop?") }
            try locks.lock(home, whatFor: "stop it first")
            let children = try ChildList.read(home: home, global: global).children.filter { VMHome.isHome($0, global: global) }
            if !children.isEmpty && !recursive {
                throw VMToolsError(.failure, home, "has children (\(children.joined(separator: ", "))); 'vmrm -r' deletes them too")
            }
            if !keep { try refuseRunningBelow(home) }
            for child in children { try delete(child, depth: depth + 1, locks, tx, users) }
            // Its snapshots live in its images and snapshots/: they go with it (vmrm(1)).
            let snapshots = (try? VMSnapshots(resolver.loadVM(home: home, global: global), environment: environment).listIfAny().count) ?? 0
            snapshotCounts[home] = snapshots
            guard try prompter.confirm("Delete the virtual machine \(home)" + Self.withSnapshots(snapshots, kept: keep)) else { throw Cancelled() }
            let settings = global.settingsPath(in: home)
            let recorded = (try? VMSettingsFile.read(settings))?.parent.map { $0.hasPrefix("/") ? $0 : home.appendingPathComponent($0) }
            let parent = recorded.flatMap { FileSystem.realPath($0) }
            // A parent that is gone lists nobody; one that cannot be read
            // would keep listing this VM, as a read-only one would.
            if let recorded, !(parent.map { VMHome.isHome($0, global: global) } ?? false),
               access(global.settingsPath(in: recorded), F_OK) != 0, errno != ENOENT, errno != ENOTDIR {
                throw VMToolsError(.failure, recorded, "its child list cannot be updated (the parent home is not accessible: \(FileSystem.errnoMessage()))")
            }
            // The VM stops existing when its settings file goes aside; a
            // cached image it rests on stops listing it after the commit.
            // On another filesystem, what goes aside waits beside the home, not in it.
            users.willRemove(home)
            let near = home.deletingLastPathComponent
            try tx.moveAside(settings, near: near)
            if let parent, VMHome.isHome(parent, global: global) {
                try locks.lock(parent, allowRunning: true)
                try Relinker(global: global, tx: tx, environment: [:]).updateChildList(in: parent, remove: home, add: nil)
            }
            for name in [global.fileNames.childs] + global.fileNames.work
                + global.fileNames.workFiles(in: home).filter(VMFileNames.isNumberedWork) {
                try tx.moveAside(home.appendingPathComponent(name), near: near)
            }
            deleted.append(home)
            guard !keep else { return }
            let lockName = global.fileNames.lock
            var confirmed: [String] = []
            var kept = false
            for entry in try FileSystem.listDirectory(home).sorted(by: bytewiseLess) where entry != lockName {
                let path = home.appendingPathComponent(entry)
                let kind = FileSystem.isDirectory(path) && !FileSystem.isSymlink(path) ? "directory" : "file"
                if try prompter.confirm("Delete the \(kind) \(path) (Ctrl-C to abort)") {
                    confirmed.append(path)
                } else {
                    kept = true
                }
            }
            keptSomething = keptSomething || kept
            if kept {
                for path in confirmed { try tx.moveAside(path, near: near) }
            } else {
                try tx.moveAside(home, near: near)  // one rename takes the rest, the lock link included
            }
        }

        /// `, with its 2 snapshots`; `-k` keeps the images that hold them.
        static func withSnapshots(_ n: Int, kept: Bool) -> String {
            guard n > 0 else { return "" }
            let what = n == 1 ? "its snapshot" : "its \(n) snapshots"
            return kept ? " (\(what) \(n == 1 ? "stays" : "stay") in the disk images kept)" : ", with \(what)"
        }

        /// VMs stored below the home (not its children) go with it: none may be running.
        func refuseRunningBelow(_ home: String) throws {
            var stack = [home]
            while let dir = stack.popLast() {
                for entry in (try? FileSystem.listDirectory(dir)) ?? [] {
                    let path = dir.appendingPathComponent(entry)
                    guard FileSystem.isDirectory(path), !FileSystem.isSymlink(path) else { continue }
                    if VMHome.isHome(path, global: global), let p = RunningState.process(home: path, global: global) {
                        throw VMToolsError(.failure, home, "holds the running VM \(path) (pid \(p.pid)); stop it first")
                    }
                    stack.append(path)
                }
            }
        }
    }
}
