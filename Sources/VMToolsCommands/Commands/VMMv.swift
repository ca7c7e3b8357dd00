import VMToolsCore
import VMToolsLaunch

/// `vmmv`: move or rename VMs with their trees (vmmv(1)). Every link
/// into the moved directory is rewritten first — parent lines, storage
/// paths, `childs.lst` entries, qcow2 backing paths, children living
/// elsewhere — then one `rename(2)` moves it. A failure or Ctrl-C undoes
/// it all; after a crash `vmfix -b` does.
public enum VMMvCommand: Command {
    public static let spec = CommandSpec(
        name: "vmmv",
        summary: "move or rename virtual machines",
        synopsis: ["[-hqvy] source destination", "[-hqvy] source ... directory", "[-hqvy] -t directory source ..."],
        options: [
            OptionSpec("t", "directory", "move every source into this directory"),
            OptionSpec("y", "assume yes: never prompt"),
        ],
        operands: "source ... destination",
        operandCompletion: .directory,
        exitCodes: [(0, "every VM was moved"), (1, "a move failed (and was undone)"), (2, "wrong usage")]
    )

    /// What the command line asks for (vmmv(1)); `-y` is accepted: vmmv never prompts.
    struct Options {
        var sources: [String]
        /// `-t`, or the last operand.
        var target: String
        /// The sources go into `target` (`-t`, or several sources): it must be a directory.
        var targetIsDirectory: Bool

        init(_ args: ParsedArguments) throws {
            let targets = args.values("t")
            guard targets.count <= 1 else { throw VMToolsError.usage("-t can be given once only") }
            sources = args.operands
            if let t = targets.first {
                target = t
            } else {
                guard sources.count >= 2 else { throw VMToolsError.usage("a source and a destination are needed") }
                target = sources.removeLast()
            }
            guard !sources.isEmpty else { throw VMToolsError.usage("name the VMs to move") }
            targetIsDirectory = sources.count > 1 || !targets.isEmpty
        }
    }

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        let options = try Options(args)
        let target = options.target
        let canonicalTarget = try FileSystem.canonicalize(target, cwd: context.cwd)
        if options.targetIsDirectory && !FileSystem.isDirectory(canonicalTarget) {
            throw VMToolsError.usage("'\(target)': target is not a directory")
        }
        Interrupt.block()
        let (global, _) = try context.loadGlobal(args)
        var failed = false
        for operand in options.sources {
            do {
                let source = try FileSystem.canonicalize(operand, cwd: context.cwd)
                guard VMHome.isHome(source, global: global) else {
                    context.console.notice("\(source): no \(global.fileNames.settings) here")
                    throw VMToolsError(.failure, operand, "not a VM home")
                }
                let moved = try move(source, to: canonicalTarget, global: global, context: context)
                context.console.info("\(source): virtual machine moved to '\(moved)'")
            } catch let e as VMToolsError {
                failed = true
                context.console.error(e)
                if Interrupt.pending() != nil { break }
            }
        }
        return failed ? .failure : .success
    }

    /// Moves the VM home `source` to (or into) `target`; returns the new home.
    static func move(_ source: String, to target: String, global: GlobalConfig, context: Context) throws -> String {
        // An existing directory receives the VM (as X/vm, else X/vm_1 …);
        // anything else is the new name (vmmv(1)).
        let free: (String) -> Bool = { !FileSystem.exists($0) || FileSystem.isEmptyDirectory($0) }
        let dest = FileSystem.isDirectory(target)
            ? FileSystem.newPath(in: target, base: source.lastPathComponent, isFree: free) : target
        guard dest != source else { throw VMToolsError(.failure, source, "source and destination are the same") }
        guard !FileSystem.isWithin(dest, source) else {
            throw VMToolsError(.failure, dest, "cannot move a VM into itself")
        }
        guard FileSystem.isDirectory(dest.deletingLastPathComponent) else {
            throw VMToolsError(.failure, dest, "its directory does not exist")
        }
        if FileSystem.exists(dest) && !free(dest) { throw VMToolsError(.failure, dest, "exists and is not an empty directory") }

        let locks = LockSet(global: global, console: context.console)
        let tx = Transaction(anchor: source.deletingLastPathComponent, environment: context.environment)
        let mover = TreeMover(global: global, locks: locks, tx: tx, environment: context.environment)
        try tx.run(holding: locks, mover: mover) { try mover.move(source, to: dest) }
        return dest
    }
}
