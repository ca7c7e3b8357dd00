import VMToolsCore
import VMToolsLaunch

/// `vmfork source destination ...`: linked clones (vmcp(1)). Each new
/// VM names the source as its parent, holds only what differs (new MACs, an
/// empty overlay on each disk, `-o` values) and is listed in the source's
/// `childs.lst`. Forking is constant-time: no disk data is copied. `-c` and
/// `-a` copy instead, as `vmcp` does.
public enum VMForkCommand: Command {
    public static let spec = CommandSpec(
        name: "vmfork",
        summary: "fork virtual machines into linked clones",
        options: SharedOptions.clone,
        operands: "source destination ...",
        operandCompletion: .directory,
        exitCodes: [(0, "every fork was made"), (1, "a fork failed (and was undone)"), (2, "wrong usage")]
    )

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        guard args.operands.count >= 2 else { throw VMToolsError.usage("a source and at least one destination are needed") }
        let options = try CloneOptions(args, defaultMode: .fork)
        Interrupt.block()
        let (global, resolver) = try context.loadGlobal(args, commandLine: options.settings)
        let console = context.console
        let cloner = try Cloner(options, global: global, resolver: resolver, cwd: context.cwd, environment: context.environment,
                                console: console) { $0.show(on: console) }
        // A file inside a home means that home.
        var operand = try FileSystem.canonicalize(args.operands[0], cwd: context.cwd)
        if FileSystem.isRegularFile(operand) { operand = operand.deletingLastPathComponent }
        let source = try VMHome.locate(operand, cwd: context.cwd, global: global)
        return cloner.cloneEach(args.operands.dropFirst().map { (source, $0) }) { $0 }
    }
}
