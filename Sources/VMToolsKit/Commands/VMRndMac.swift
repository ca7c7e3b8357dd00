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
        if let prefix = args.operands.first, !prefix.isEmpty {
            context.console.print(try MACAddress.random(prefix: prefix))
            return .success
        }
        let (global, _) = try context.loadGlobal(args)
        let setting = "vm_networking_default_mac"
        let prefix = global.settings.value(setting)
        do {
            context.console.print(try MACAddress.random(prefix: prefix))
        } catch var e as VMToolsError {
            // Say where the bad default comes from, so the user knows which file to fix.
            e.message = "'\(prefix)' from \(global.settings.provenance(setting) ?? .builtin): " + e.message
            e.subject = setting
            throw e
        }
        return .success
    }
}
