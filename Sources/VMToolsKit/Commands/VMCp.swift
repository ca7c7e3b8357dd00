/// `vmcp`: copy virtual machines. Not implemented yet: a later version builds it on the
/// settings engine; until then it exits with status 70.
public enum VMCpCommand: Command {
    public static let spec = CommandSpec(
        name: "vmcp",
        summary: "copy virtual machines",
        synopsis: [],
        options: SharedOptions.clone,
        operands: "source ... destination",
        operandCompletion: .directory,
        implemented: false
    )

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        try notImplemented()
    }
}
