import VMToolsCore
import VMToolsLaunch

#if canImport(Glibc)
import Glibc
#endif

extension Context {
    /// Loads the global configuration with this command line's settings and
    /// sets the console's verbosity from `cfg_ui_verbosity`, `-q` and `-v`.
    public func loadGlobal(_ args: ParsedArguments, commandLine: CommandLineSettings = .init()) throws -> (GlobalConfig, SettingsResolver) {
        // NOTICE, not WARNING: these do not stop the command, and a command
        // that succeeds never prints WARNING (vmtools(1) DIAGNOSTICS).
        let resolver = SettingsResolver(paths: paths, commandLine: commandLine, warn: { [console] in console.notice($0) })
        let global = try resolver.loadGlobal()
        let base = global.typed.verbosity
        console.verbosity = max(0, base + args.verbosityDelta)
        return (global, resolver)
    }
}

/// The one protocol behind all fourteen commands.
public protocol Command: Sendable {
    static var spec: CommandSpec { get }
    /// Runs with parsed arguments; errors thrown carry their exit code.
    static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode
}
