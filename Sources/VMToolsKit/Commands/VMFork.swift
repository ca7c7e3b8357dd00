/// `vmfork`: fork virtual machines into linked clones. Not implemented yet: a later version builds it on the
/// settings engine; until then it exits with status 70.
public enum VMForkCommand: Command {
    public static let spec = CommandSpec(
        name: "vmfork",
        summary: "fork virtual machines into linked clones",
        synopsis: [],
        options: SharedOptions.clone,
        operands: "source destination ...",
        operandCompletion: .directory,
        implemented: false
    )

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        try notImplemented()
    }
}
