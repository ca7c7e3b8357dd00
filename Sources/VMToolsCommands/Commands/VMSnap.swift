import VMToolsCore
import VMToolsLaunch

/// `vmsnap`: named snapshots of VMs — save, list, revert, delete (vmsnap(1)).
/// The last operand is the snapshot's name, every one before it a VM, so
/// one command snapshots a whole lab. Each VM is done on its own, under its
/// own lock; a failure on one is reported and the next still runs.
public enum VMSnapCommand: Command {
    public static let spec = CommandSpec(
        name: "vmsnap",
        summary: "save, list, revert and delete named snapshots",
        synopsis: ["[-fhqv] [--] vmhome ... name", "[-hjqv] -l [--] [vmhome ...]", "[-hqv] -r [--] vmhome ... name",
                   "[-hqv] -d [--] vmhome ... name"],
        options: [
            OptionSpec("d", "delete the named snapshot"),
            OptionSpec("f", "replace a snapshot of that name"),
            OptionSpec("j", "with -l: print JSON"),
            OptionSpec("l", "list the snapshots"),
            OptionSpec("r", "revert to the named snapshot"),
        ],
        operands: "vmhome ... name",
        operandCompletion: .snapshot,
        exitCodes: [(0, "success"), (1, "a snapshot could not be saved, reverted or deleted (nothing changed on that VM)"),
                    (2, "wrong usage")]
    )

    /// What the command line asks for (vmsnap(1)).
    struct Options {
        enum Action: Equatable { case create(replace: Bool), list, revert, delete }
        var action: Action
        var json: Bool
        var homes: [String]
        /// The snapshot's name; nil for `-l`.
        var name: String?

        init(_ args: ParsedArguments) throws {
            let chosen = [("l", Action.list), ("r", .revert), ("d", .delete)].filter { args.has(Character($0.0)) }
            guard chosen.count <= 1 else { throw VMToolsError.usage("-l, -r and -d cannot be combined") }
            action = chosen.first?.1 ?? .create(replace: args.has("f"))
            json = args.has("j")
            if args.has("f"), action != .create(replace: true) { throw VMToolsError.usage("-f goes with saving a snapshot, not with -l, -r or -d") }
            if json, action != .list { throw VMToolsError.usage("-j goes with -l") }
            if action == .list {
                homes = args.operands.isEmpty ? ["."] : args.operands
                name = nil
            } else {
                guard args.operands.count >= 2, let last = args.operands.last else {
                    throw VMToolsError.usage(args.operands.isEmpty ? "name a VM home and the snapshot"
                                             : "name the snapshot after the VM homes (vmsnap VM NAME)")
                }
                homes = Array(args.operands.dropLast())
                name = last
            }
        }
    }

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        let options = try Options(args)
        let (global, resolver) = try context.loadGlobal(args)
        if options.action == .list {
            return list(options, global: global, resolver: resolver, context: context)
        }
        guard let name = options.name else { return .usage }
        // Ctrl-C waits for the VM at hand to be done or rolled back (vmsnap(1) CRASH SAFETY).
        Interrupt.block()
        var status = ExitCode.success
        for operand in options.homes {
            // Ctrl-C stops the lab here: the VMs done stay done.
            try Interrupt.check()
            do {
                let home = try VMHome.locate(operand, cwd: context.cwd, global: global)
                try change(home, name, options.action, global: global, resolver: resolver, context: context)
            } catch let e as VMToolsError {
                status = .failure
                context.console.error(e)
                // That VM was rolled back because of Ctrl-C: said once, and no further VM.
                if Interrupt.pending() != nil { return .failure }
            }
        }
        return status
    }

    /// One VM: its lock held throughout (a running VM too: its snapshot is
    /// taken over QMP), its settings resolved, the operation, one line.
    static func change(_ home: String, _ name: String, _ action: Options.Action, global: GlobalConfig,
                       resolver: SettingsResolver, context: Context) throws {
        let locks = LockSet(global: global, console: context.console)
        defer { locks.releaseAll() }
        try locks.lock(home, allowRunning: true)
        let vm = try resolver.loadVM(home: home, global: global)
        let snapshotter = Snapshotter(vm: vm, global: global, environment: context.environment, console: context.console)
        switch action {
        case .create(let replace):
            let s = try snapshotter.create(name, replace: replace)
            context.console.info("\(home): snapshot \(name) saved (\(summary(of: s)))")
        case .revert:
            let before = try? snapshotter.snapshots.list().first { $0.name == name }
            try snapshotter.revert(name)
            let resumes = FileSystem.isRegularFile(snapshotter.snapshots.resumePath)
            if resumes {
                context.console.info("\(home): reverted to snapshot \(name); the next vmup resumes its RAM and devices")
            } else if before?.live == true {
                context.console.info("\(home): reverted to snapshot \(name), running from there")
            } else {
                context.console.info("\(home): reverted to snapshot \(name)")
            }
        case .delete:
            try snapshotter.delete(name)
            context.console.info("\(home): snapshot \(name) deleted")
        case .list:
            break
        }
    }

    /// `live, 212 MiB of RAM and devices` or `stopped: hdd1, hdd2, vars, tpm`.
    static func summary(of s: Snapshot) -> String {
        s.live ? "live, \(Formatting.bytes(s.vmStateSize)) of RAM and devices" : "stopped: " + images(of: s).joined(separator: ", ")
    }

    /// The labels of what a snapshot covers, `tpm` last.
    static func images(of s: Snapshot) -> [String] { s.disks + (s.tpm ? ["tpm"] : []) }
}
