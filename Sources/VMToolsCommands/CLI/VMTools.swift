import VMToolsCore
import VMToolsLaunch

#if canImport(Glibc)
import Glibc
#endif

/// The multi-call entry point: `vmup`, `vminfo` … are symlinks to `vmtools`,
/// and `vmtools <command> …` works too.
public enum VMTools {

    /// Every command, in the order `vmtools -h` lists them.
    public static let commands: [any Command.Type] = [
        VMUpCommand.self, VMCreateCommand.self, VMDownCommand.self, VMPsCommand.self, VMInfoCommand.self,
        VMMonCommand.self, VMCpCommand.self, VMForkCommand.self, VMMvCommand.self, VMRmCommand.self,
        VMMergeCommand.self, VMFixCommand.self, VMRndMacCommand.self, VMImageCommand.self, VMSnapCommand.self,
    ]

    public static func command(named name: String) -> (any Command.Type)? {
        commands.first { $0.spec.name == name }
    }

    public static func main(arguments: [String]) -> Int32 {
        let out = OutputStream(fd: 1)
        let err = OutputStream(fd: 2)
        let env = currentEnvironment()
        let invokedAs = (arguments.first ?? "vmtools").lastPathComponent
        let rest = Array(arguments.dropFirst())
        let paths = SystemPaths(environment: env, executablePath: FileSystem.readLink("/proc/self/exe"))
        func context(_ name: String) -> Context {
            Context(environment: env, cwd: FileSystem.currentDirectory(), paths: paths,
                    console: Console(command: name, out: out, err: err))
        }
        defer {
            out.flush()
            err.flush()
        }
        if let command = command(named: invokedAs) {
            return run(command, rest, context(invokedAs))
        }
        guard invokedAs.hasPrefix("vmtools") else {
            return usageError(context("vmtools").console, "unknown command name '\(invokedAs)'")
        }
        let front = context("vmtools").console
        guard let first = rest.first else {
            front.out.write(overview)
            return ExitCode.success.rawValue
        }
        switch first {
        case "-h", "--help":
            front.out.write(overview)
            return ExitCode.success.rawValue
        case "--version", "-V":
            front.out.write(versionText(for: "vmtools"))
            return ExitCode.success.rawValue
        case "--list":
            // For the completion scripts: candidates only a vmtools can compute.
            guard rest.count >= 2, let words = CompletionLists.list(rest[1], Array(rest.dropFirst(2)), paths: paths, environment: env) else {
                return usageError(front, "--list takes one of: templates, running, homes [PREFIX], images, snapshots HOME")
            }
            front.out.write(words.map { $0 + "\n" }.joined())
            return ExitCode.success.rawValue
        case "--completion":
            // For packagers: the scripts under completions/ come from here.
            guard rest.count == 2, let script = Completions.script(for: rest[1]) else {
                return usageError(front, "--completion takes one of: \(Completions.shells.joined(separator: ", "))")
            }
            front.out.write(script)
            return ExitCode.success.rawValue
        case "--defaults":
            // For packagers and for etc/vmtools.conf: the shipped file comes from here.
            guard rest.count == 1 else { return usageError(front, "--defaults takes no argument") }
            front.out.write(Defaults.configurationFile)
            return ExitCode.success.rawValue
        default:
            guard let command = command(named: first) else {
                return usageError(front, "unknown command '\(first)'")
            }
            return run(command, Array(rest.dropFirst()), context(first))
        }
    }

    /// `vmup (vmtools) 0.1.0` and the binary that runs: with two vmtools on
    /// PATH, the second line says which one answered (vmtools(1)).
    static func versionText(for name: String) -> String {
        let head = name == "vmtools" ? "vmtools \(Release.version)" : "\(name) (vmtools) \(Release.version)"
        let exe = FileSystem.readLink("/proc/self/exe") ?? CommandLine.arguments.first ?? "?"
        return head + "\nexecutable: " + exe.escapingControlCharacters + "\n"
    }

    static func usageError(_ console: Console, _ message: String) -> Int32 {
        console.error("\(message); the commands are: \(commands.map { $0.spec.name }.joined(separator: " ")) (see 'vmtools -h')")
        return ExitCode.usage.rawValue
    }

    public static var overview: String {
        var lines = ["Usage: vmtools COMMAND [ARGUMENT ...]   or   COMMAND [ARGUMENT ...] through a link named COMMAND",
                     "", "vmtools \(Release.version): QEMU virtual machines without a daemon, each one a directory.", "", "Commands:"]
        let width = commands.map { $0.spec.name.count }.max() ?? 8
        for c in commands {
            lines.append("  " + c.spec.name.leftPadded(to: width) + "  " + c.spec.summary)
        }
        lines += ["", "'COMMAND -h' shows a command's options; see vmtools(1).",
                  "Other options: --version prints the version and the path of this vmtools."]
        return lines.joined(separator: "\n") + "\n"
    }

    static func run(_ command: any Command.Type, _ args: [String], _ context: Context) -> Int32 {
        let console = context.console
        let spec = command.spec
        let parsed: ParsedArguments
        do {
            parsed = try ArgumentParser.parse(args, spec: spec)
        } catch let e as VMToolsError {
            console.error(e)
            console.err.write("Try '\(spec.name) -h' for help.\n")
            return e.code.rawValue
        } catch {
            console.error("\(error)")
            return ExitCode.failure.rawValue
        }
        if parsed.has("h") {
            console.out.write(spec.usage)
            return ExitCode.success.rawValue
        }
        if parsed.version {
            console.out.write(versionText(for: spec.name))
            return ExitCode.success.rawValue
        }
        console.verbosity = max(0, 2 + parsed.verbosityDelta)
        do {
            let code = try command.run(parsed, context)
            console.flush()
            return code.rawValue
        } catch let e as VMToolsError {
            console.error(e)
            if e.code == .usage { console.err.write("Try '\(spec.name) -h' for help.\n") }
            console.flush()
            return e.code.rawValue
        } catch {
            console.error("\(error)")
            console.flush()
            return ExitCode.failure.rawValue
        }
    }

    static func currentEnvironment() -> [String: String] {
        var env: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") {
                env[String(s[..<eq])] = String(s[s.index(after: eq)...])
            }
            p += 1
        }
        return env
    }
}
