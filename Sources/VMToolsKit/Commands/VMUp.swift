/// `vmup`: start virtual machines, or boot disk images and ISO files directly. Not implemented yet: a later version builds it on the
/// settings engine; until then it exits with status 70.
public enum VMUpCommand: Command {
    public static let spec = CommandSpec(
        name: "vmup",
        summary: "start virtual machines, or boot disk images and ISO files directly",
        synopsis: [],
        options: SharedOptions.start,
        operands: "[path ...]",
        operandCompletion: .file,
        implemented: false
    )

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        try notImplemented()
    }
}
