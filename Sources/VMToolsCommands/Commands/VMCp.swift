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
        if options.mode == .autonomous, OVFExporter.kind(of: destination) != nil, !FileSystem.isDirectory(destination) {
            return try export(args, options, destination: destination, global: global, resolver: resolver, context: context)
        }
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

    /// `-a VM DEST.ova|DEST.ovf`: an OVF export (vmcp(1) OVF and OVA).
    static func export(_ args: ParsedArguments, _ options: CloneOptions, destination: String, global: GlobalConfig,
                       resolver: SettingsResolver, context: Context) throws -> ExitCode {
        guard args.operands.count == 2 else { throw VMToolsError.usage("an OVF export takes one VM") }
        guard !options.childRecursion, !options.directoryRecursion else { throw VMToolsError.usage("an OVF export takes one VM: no -R or -r") }
        let source = try FileSystem.canonicalize(args.operands[0], cwd: context.cwd)
        let dest = try FileSystem.canonicalize(destination, cwd: context.cwd)
        let exporter = OVFExporter(global: global, resolver: resolver, environment: context.environment, console: context.console,
                                    noLock: options.noLock)
        let files = try exporter.export(source, to: dest)
        context.console.info("\(source): exported to '\(files.last ?? dest)'")
        return .success
    }
}
