import VMToolsCore
import VMToolsLaunch

/// `vmrndmac [prefix]`: print a random MAC address (vmrndmac(1)).
public enum VMRndMacCommand: Command {
    public static let spec = CommandSpec(
        name: "vmrndmac",
        summary: "print a random MAC address",
        synopsis: ["[-hqv] [--] [prefix]"],
        options: [],
        operands: "[prefix]",
        operandCompletion: .none,
        exitCodes: [(0, "success"), (1, "invalid prefix"), (2, "more than one operand")],
        unknownOptionsAreOperands: true
    )

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        // The original ignored extra operands, so `vmrndmac 52 54` silently
        // meant 52:xx:…; a prefix is one word (vmrndmac(1)).
        if args.operands.count > 1 {
            throw VMToolsError.usage("one prefix expected, got \(args.operands.count) operands (\(args.operands.map(shellQuote).joined(separator: " "))); write it with colons, like 52:54:00")
        }
        if let prefix = args.operands.first, !prefix.isEmpty {
            context.console.print(try MACAddress.random(prefix: prefix))
            return .success
        }
        let (global, _) = try context.loadGlobal(args)
        let setting = SettingKey.defaultMAC
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
