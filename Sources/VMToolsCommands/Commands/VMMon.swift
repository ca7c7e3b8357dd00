import VMToolsCore
import VMToolsQEMU
import VMToolsLaunch

#if canImport(Glibc)
import Glibc
#endif

/// `vmmon`: talk to a running VM's human monitor (vmmon(1)). Without
/// `-c`, an interactive session (lines from stdin, replies on stdout, so
/// `echo 'info status' | vmmon vm` works too); `-c COMMAND` runs one command.
public enum VMMonCommand: Command {
    public static let spec = CommandSpec(
        name: "vmmon",
        summary: "attach the terminal to a running VM's QEMU monitor",
        options: [
            OptionSpec("c", "command", "run one monitor command, print its output and exit"),
            OptionSpec("n", "no line editing: do not run the session under rlwrap"),
        ],
        operands: "[path]",
        operandCompletion: .running,
        exitCodes: [(0, "success"), (1, "the VM is not running or has no monitor"), (2, "wrong usage")]
    )

    /// What the command line asks for (vmmon(1)).
    struct Options {
        /// `-c`: one command instead of a session (the last `-c` wins).
        var command: String?
        /// `-n`: no rlwrap.
        var noLineEditing: Bool

        init(_ args: ParsedArguments) throws {
            if args.operands.count > 1 { throw VMToolsError.usage("at most one VM home or socket") }
            command = args.last("c")
            noLineEditing = args.has("n")
        }
    }

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        let options = try Options(args)
        let (global, _) = try context.loadGlobal(args)
        let path = try FileSystem.canonicalize(args.operands.first ?? ".", cwd: context.cwd)
        var st = stat()
        let socketPath: String
        if stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFSOCK {
            socketPath = path
        } else {
            let home = FileSystem.isDirectory(path) ? path : path.deletingLastPathComponent
            // Name what the user typed: for a file operand, its directory would puzzle.
            let named = args.operands.first ?? home
            guard let p = RunningState.process(home: home, global: global) else {
                throw VMToolsError(.failure, named, "not running (no QEMU holds its \(global.fileNames.pid))")
            }
            guard let s = p.monitorSocket(home: home) else {
                throw VMToolsError(.failure, named, "has no monitor socket (started in the foreground?)")
            }
            socketPath = s
        }
        // Line editing and history: run the session under rlwrap when a person
        // types at a terminal (the original did the same; -n turns it off).
        if options.command == nil, !options.noLineEditing, isatty(context.stdin) == 1, context.environment["VMTOOLS_RLWRAPPED"] == nil,
           let rlwrap = Subprocess.which("rlwrap", path: context.environment["PATH"]),
           let me = FileSystem.readLink("/proc/self/exe") {
            setenv("VMTOOLS_RLWRAPPED", "1", 1)
            let argv = [rlwrap, "-C", "vmmon", me, "vmmon", "-n", "--", socketPath]
            var cargs = argv.map { strdup($0) } + [nil]
            execv(rlwrap, &cargs)
            // exec failed: carry on without line editing.
        }
        let monitor = try HumanMonitor(path: socketPath)
        let console = context.console
        if let command = options.command {
            if isQuit(command) {
                try monitor.send(command)
                return .success
            }
            console.out.write(try monitor.execute(command))
            return .success
        }
        console.out.write(monitor.banner + "(qemu) ")
        console.out.flush()
        while let line = readLine(strippingNewline: true) {
            if isQuit(line) {
                // QEMU exits without answering.
                try? monitor.send(line)
                break
            }
            console.out.write(try monitor.execute(line) + "(qemu) ")
            console.out.flush()
        }
        console.out.write("\n")
        return .success
    }

    /// `quit` (or `q`) stops QEMU, which then closes the connection without answering.
    static func isQuit(_ line: String) -> Bool {
        let word = line.split(separator: " ").first.map(String.init) ?? ""
        return word == "quit" || word == "q"
    }
}
