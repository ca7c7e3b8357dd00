/// `vmcreate`: create virtual machine homes. Not implemented yet: a later version builds it on the
/// settings engine; until then it exits with status 70.
public enum VMCreateCommand: Command {
    public static let spec = CommandSpec(
        name: "vmcreate",
        summary: "create virtual machine homes",
        synopsis: [],
        options: SharedOptions.start,
        operands: "vmhome ...",
        operandCompletion: .directory,
        implemented: false
    )

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        try notImplemented()
    }
}
