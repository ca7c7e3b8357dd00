/// `vmps`: list running virtual machines. Not implemented yet: a later version builds it on the
/// settings engine; until then it exits with status 70.
public enum VMPsCommand: Command {
    public static let spec = CommandSpec(
        name: "vmps",
        summary: "list running virtual machines",
        synopsis: ["[-hqrv] [-n | [-o fields] [-s keys]] [-a]", "[-hqrv] [-n | [-o fields] [-s keys]] -d vmhome ...", "[-hqrv] [-n | [-o fields] [-s keys]] -p pid ...", "[-hqrv] [-n | [-o fields] [-s keys]] -u user ..."],
        options: [
        OptionSpec("a", "VMs of every user"),
        OptionSpec("d", "operands are VM homes"),
        OptionSpec("n", "print nothing; exit 0 if a selected VM runs, 3 otherwise"),
        OptionSpec("o", "fields", "fields to show, letters of cdehmnpqu (default pnd)"),
        OptionSpec("p", "operands are process ids"),
        OptionSpec("r", "raw: no header line"),
        OptionSpec("s", "keys", "sort keys, letters of cdehmnpqu (uppercase: descending)"),
        OptionSpec("u", "operands are user names or ids"),
        ],
        operands: "",
        operandCompletion: .directory,
        implemented: false
    )

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        try notImplemented()
    }
}
