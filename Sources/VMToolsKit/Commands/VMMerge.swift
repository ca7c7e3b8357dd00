/// `vmmerge`: merge a virtual machine with its parent or children. Not implemented yet: a later version builds it on the
/// settings engine; until then it exits with status 70.
public enum VMMergeCommand: Command {
    public static let spec = CommandSpec(
        name: "vmmerge",
        summary: "merge a virtual machine with its parent or children",
        synopsis: [],
        options: [
        OptionSpec("c", "merge the VM into its children"),
        OptionSpec("p", "merge the VM into its parent (default)"),
        OptionSpec("s", "safe mode: work on copies so a failure can be rolled back"),
        OptionSpec("y", "assume yes: never prompt"),
        ],
        operands: "[vmhome ...]",
        operandCompletion: .directory,
        implemented: false
    )

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        try notImplemented()
    }
}
