/// `vmdown`: stop running virtual machines. Not implemented yet: a later version builds it on the
/// settings engine; until then it exits with status 70.
public enum VMDownCommand: Command {
    public static let spec = CommandSpec(
        name: "vmdown",
        summary: "stop running virtual machines",
        synopsis: ["[-hkqstvw] [vmhome ...]", "[-hkqstvw] -a", "[-hkqstvw] -p pid ..."],
        options: [
        OptionSpec("a", "every running VM of every user"),
        OptionSpec("k", "kill QEMU (SIGKILL)"),
        OptionSpec("p", "operands are process ids"),
        OptionSpec("s", "ACPI power-off request through the monitor"),
        OptionSpec("t", "terminate QEMU (SIGTERM)"),
        OptionSpec("w", "wait for the VM to stop after each method"),
        ],
        operands: "[vmhome ... | -a | -p pid ...]",
        operandCompletion: .directory,
        implemented: false
    )

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        try notImplemented()
    }
}
