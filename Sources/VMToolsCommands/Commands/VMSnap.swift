import VMToolsCore
import VMToolsLaunch

/// `vmsnap`: named snapshots of VMs — save, list, revert, delete (vmsnap(1)).
/// The last operand is the snapshot's name, every one before it a VM, so
/// one command snapshots a whole lab.
public enum VMSnapCommand: Command {
    public static let spec = CommandSpec(
        name: "vmsnap",
        summary: "save, list, revert and delete named snapshots",
        synopsis: ["[-fhqv] [--] vmhome ... name", "[-hjqv] -l [--] [vmhome ...]", "[-hqv] -r [--] vmhome ... name",
                   "[-hqv] -d [--] vmhome ... name"],
        options: [
            OptionSpec("d", "delete the named snapshot"),
            OptionSpec("f", "replace a snapshot of that name"),
            OptionSpec("j", "with -l: print JSON"),
            OptionSpec("l", "list the snapshots"),
            OptionSpec("r", "revert to the named snapshot"),
        ],
        operands: "vmhome ... name",
        operandCompletion: .snapshot,
        exitCodes: [(0, "success"), (1, "a snapshot could not be saved, reverted or deleted (nothing changed on that VM)"),
                    (2, "wrong usage")]
    )

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        throw VMToolsError(.failure, nil, "vmsnap is not implemented yet")
    }
}
