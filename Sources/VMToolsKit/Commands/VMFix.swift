/// `vmfix`: detect and repair inconsistencies in VM homes. Not implemented yet: a later version builds it on the
/// settings engine; until then it exits with status 70.
public enum VMFixCommand: Command {
    public static let spec = CommandSpec(
        name: "vmfix",
        summary: "detect and repair inconsistencies in VM homes",
        synopsis: [],
        options: [
        OptionSpec("A", "every test, cosmetic ones included (-bdlps)"),
        OptionSpec("a", "every test of a real defect (-blps)"),
        OptionSpec("b", "leftover backup directories"),
        OptionSpec("d", "leftover qemu.pid and monitor.sock files"),
        OptionSpec("l", "leftover lock files"),
        OptionSpec("n", "check only, change nothing"),
        OptionSpec("p", "parent and children links"),
        OptionSpec("r", "recursive: every directory below each operand"),
        OptionSpec("s", "storage paths and backing files"),
        ],
        operands: "[directory ...]",
        operandCompletion: .directory,
        implemented: false
    )

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        try notImplemented()
    }
}
