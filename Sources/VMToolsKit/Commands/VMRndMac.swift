/// `vmrndmac [prefix]`: print a random MAC address (commands.md §12).
public enum VMRndMacCommand: Command {
    public static let spec = CommandSpec(
        name: "vmrndmac",
        summary: "print a random MAC address",
        synopsis: ["[-hqv] [--] [prefix]"],
        options: [],
        operands: "[prefix]",
        operandCompletion: .none,
        exitCodes: [(0, "success"), (1, "invalid prefix")],
        unknownOptionsAreOperands: true
    )

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        // Extra operands are ignored, as in the original.
        var prefix = args.operands.first ?? ""
        if prefix.isEmpty {
            let (global, _) = try context.loadGlobal(args)
            prefix = global.settings.value("vm_networking_default_mac")
        }
        context.console.print(try MACAddress.random(prefix: prefix))
        return .success
    }
}
