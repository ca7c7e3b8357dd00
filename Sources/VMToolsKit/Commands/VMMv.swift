/// `vmmv`: move or rename virtual machines. Not implemented yet: a later version builds it on the
/// settings engine; until then it exits with status 70.
public enum VMMvCommand: Command {
    public static let spec = CommandSpec(
        name: "vmmv",
        summary: "move or rename virtual machines",
        synopsis: ["[-hqvy] source destination", "[-hqvy] source ... directory", "[-hqvy] -t directory source ..."],
        options: [
        OptionSpec("t", "directory", "move every source into this directory"),
        OptionSpec("y", "assume yes: never prompt"),
        ],
        operands: "source ... destination",
        operandCompletion: .directory,
        implemented: false
    )

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        try notImplemented()
    }
}
