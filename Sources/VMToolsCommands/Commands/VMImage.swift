import VMToolsCore
import VMToolsLaunch

/// `vmimage`: the image catalog and the cache of verified images (vmimage(1)).
public enum VMImageCommand: Command {
    public static let spec = CommandSpec(
        name: "vmimage",
        summary: "list, download, check and remove images by name",
        options: [
            OptionSpec("c", "check the cache: verify every image's digest, list images no VM uses"),
            OptionSpec("j", "print JSON"),
            OptionSpec("l", "list the catalog"),
            OptionSpec("r", "remove the named images from the cache"),
        ],
        operands: "[name ...]",
        operandCompletion: .none,
        exitCodes: [(0, "success"), (1, "an image could not be pulled, checked or removed"), (2, "wrong usage")]
    )

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        throw VMToolsError(.failure, nil, "not implemented yet")
    }
}
