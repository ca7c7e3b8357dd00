import VMToolsCore
import VMToolsLaunch

/// `vmcp source ... destination`: copy virtual machines (vmcp(1)).
/// A copy has the source's parent and its own copies of the source's disks
/// (sparse, reflinked where the filesystem can); `-a` makes a standalone
/// copy with every inherited setting and backing chain flattened, `-f`
/// forks instead. `-R` takes the descendants along, `-r` every VM below.
public enum VMCpCommand: Command {
    public static let spec = CommandSpec(
        name: "vmcp",
        summary: "copy virtual machines",
        options: SharedOptions.clone,
        operands: "source ... destination",
        operandCompletion: .directory,
        exitCodes: [(0, "every copy was made"), (1, "a copy failed (and was undone)"), (2, "wrong usage")]
    )

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        guard args.operands.count >= 2 else { throw VMToolsError.usage("a source and a destination are needed") }
        let options = try CloneOptions(args, defaultMode: .copy)
        let destination = args.operands.last!
        if args.operands.count > 2 {
            let dest = try FileSystem.canonicalize(destination, cwd: context.cwd)
            guard FileSystem.isDirectory(dest) else {
                throw VMToolsError.usage("'\(destination)': with several sources the destination must be an existing directory")
            }
        }
        Interrupt.block()
        let (global, resolver) = try context.loadGlobal(args, commandLine: options.settings)
        let console = context.console
        let cloner = try Cloner(options, global: global, resolver: resolver, cwd: context.cwd, environment: context.environment,
                                console: console) { $0.show(on: console) }
        return cloner.cloneEach(args.operands.dropLast().map { ($0, destination) }) { operand in
            let source = try FileSystem.canonicalize(operand, cwd: context.cwd)
            guard FileSystem.isDirectory(source) else { throw VMToolsError(.failure, operand, "not a directory") }
            // As vmmv refuses it: the copy would nest inside its own source.
            if (try? FileSystem.canonicalize(destination, cwd: context.cwd)) == source {
                throw VMToolsError(.failure, source, "source and destination are the same")
            }
            return source
        }
    }
}
