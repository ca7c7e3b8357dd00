/// `vmrm`: delete virtual machines. Not implemented yet: a later version builds it on the
/// settings engine; until then it exits with status 70.
public enum VMRmCommand: Command {
    public static let spec = CommandSpec(
        name: "vmrm",
        summary: "delete virtual machines",
        synopsis: [],
        options: [
        OptionSpec("k", "keep disk images and unknown files"),
        OptionSpec("r", "also delete every descendant VM"),
        OptionSpec("y", "assume yes: delete without asking"),
        ],
        operands: "vmhome ...",
        operandCompletion: .directory,
        implemented: false
    )

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        try notImplemented()
    }
}
