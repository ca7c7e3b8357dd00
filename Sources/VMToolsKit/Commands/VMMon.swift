/// `vmmon`: attach the terminal to a running VM's QEMU monitor. Not implemented yet: a later version builds it on the
/// settings engine; until then it exits with status 70.
public enum VMMonCommand: Command {
    public static let spec = CommandSpec(
        name: "vmmon",
        summary: "attach the terminal to a running VM's QEMU monitor",
        synopsis: [],
        options: [
        OptionSpec("n", "no line editing (do not use rlwrap)"),
        ],
        operands: "[path]",
        operandCompletion: .directory,
        implemented: false
    )

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        try notImplemented()
    }
}
