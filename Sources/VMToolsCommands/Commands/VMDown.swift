import VMToolsCore
import VMToolsQEMU
import VMToolsLaunch

#if canImport(Glibc)
import Glibc
#endif

/// `vmdown`: stop running VMs (vmdown(1)): ACPI power-off, then SIGTERM,
/// then SIGKILL, each stage bounded by `vm_qemu_shutdown_timeout`, and done
/// as soon as QEMU is gone.
public enum VMDownCommand: Command {
    public static let spec = CommandSpec(
        name: "vmdown",
        summary: "stop running virtual machines",
        synopsis: ["[-hkqstvw] [--] [vmhome ...]", "[-hkqstvw] -a", "[-hkqstvw] -p [--] pid ..."],
        options: [
            OptionSpec("a", "every running VM of this user (bare boots included)"),
            OptionSpec("k", "kill QEMU (SIGKILL)"),
            OptionSpec("p", "operands are process ids"),
            OptionSpec("s", "ACPI power-off request (the guest shuts down cleanly)"),
            OptionSpec("t", "terminate QEMU (SIGTERM)"),
            OptionSpec("w", "wait for the VM to stop after each method"),
        ],
        operands: "[vmhome ...]",
        operandCompletion: .running,
        exitCodes: [(0, "every selected VM is stopped"), (1, "an error occurred"), (2, "wrong usage"),
                    (3, "a VM was not running, or survived the last method")]
    )

    struct Target {
        var process: QemuProcess
        var home: String?
        /// Where its pid file and sockets are (a home or a run-time
        /// directory); nil for a QEMU vmtools did not start.
        var runDirectory: String?
        var name: String { process.name ?? home?.lastPathComponent ?? "pid \(process.pid)" }
        var label: String { "\(name) (pid \(process.pid))" }

        init(_ process: QemuProcess, global: GlobalConfig) {
            self.process = process
            let pidName = global.fileNames.pid
            home = process.home(pidFile: pidName)
            runDirectory = process.runDirectory(pidFile: pidName)
        }

        /// Gone: no QEMU holds the pid-file lock any more (a daemonised QEMU can
        /// linger as a zombie, so the pid alone proves nothing).
        func isGone(_ global: GlobalConfig) -> Bool {
            if let runDirectory {
                let pidFile = runDirectory.appendingPathComponent(global.fileNames.pid)
                return RunningState.process(pidFile: pidFile)?.pid != process.pid
            }
            return QemuProcess.read(pid: process.pid) == nil
        }
    }

    /// What the command line asks for (vmdown(1)).
    struct Options {
        enum Method { case powerOff, terminate, kill }
        enum Selection { case homes, allOfMine, pids }

        var selection: Selection
        /// `-s`, `-t`, `-k` in that fixed order whatever the command line's; all three when none is given.
        var methods: [Method]
        /// `-w`, implied by a sequence of methods.
        var wait: Bool

        init(_ args: ParsedArguments) throws {
            let all = args.has("a"), pids = args.has("p")
            if all && pids { throw VMToolsError.usage("-a and -p cannot be combined") }
            if all && !args.operands.isEmpty { throw VMToolsError.usage("-a takes no operands") }
            if pids && args.operands.isEmpty { throw VMToolsError.usage("-p needs at least one pid") }
            selection = all ? .allOfMine : pids ? .pids : .homes
            let given: [(Character, Method)] = [("s", .powerOff), ("t", .terminate), ("k", .kill)]
            methods = given.filter { args.has($0.0) }.map(\.1)
            if methods.isEmpty { methods = [.powerOff, .terminate, .kill] }
            wait = args.has("w") || methods.count > 1
        }
    }

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        let options = try Options(args)
        let (global, _) = try context.loadGlobal(args)
        let console = context.console
        var status = ExitCode.success
        var targets: [Target] = []
        switch options.selection {
        case .allOfMine:
            // What vmps lists for this user, bare boots included.
            for p in QemuProcess.all() where p.uid == geteuid() { targets.append(Target(p, global: global)) }
        case .pids:
            for operand in args.operands {
                guard let pid = Int32(operand), pid > 0, let p = QemuProcess.read(pid: pid) else {
                    console.error("\(operand): not found, or not a QEMU virtual machine")
                    status = .soft
                    continue
                }
                targets.append(Target(p, global: global))
            }
        case .homes:
            for operand in args.operands.isEmpty ? ["."] : args.operands {
                do {
                    var home = try FileSystem.canonicalize(operand, cwd: context.cwd)
                    if FileSystem.isRegularFile(home) { home = home.deletingLastPathComponent }
                    guard let p = RunningState.process(home: home, global: global) else {
                        // Name what the user typed: for a file operand, its directory would puzzle.
                        console.error(VMToolsError(.soft, operand, "not running"))
                        status = .soft
                        continue
                    }
                    var t = Target(p, global: global)
                    t.home = home
                    targets.append(t)
                } catch let e as VMToolsError {
                    console.error(e)
                    status = .soft
                }
            }
        }
        if targets.isEmpty {
            console.info("no virtual machine to shut down")
            return status
        }
        let methods = options.methods, wait = options.wait
        let timeout = Double(global.typed.shutdownTimeout)
        var remaining = targets
        for (k, method) in methods.enumerated() {
            let isLast = k == methods.count - 1
            switch method {
            case .powerOff:
                console.info("powering off guests...")
                remaining = powerOff(remaining, timeout: wait ? timeout : 0, global: global, console: console)
            case .terminate:
                console.info("terminating QEMU processes...")
                remaining = signal(remaining, SIGTERM, console: console, failed: &status)
                if wait || isLast { remaining = waitGone(remaining, timeout: wait ? timeout : 0, global: global) }
            case .kill:
                console.info("killing QEMU processes...")
                remaining = signal(remaining, SIGKILL, console: console, failed: &status)
                // SIGKILL cannot be refused: wait briefly so the caller sees it gone.
                remaining = waitGone(remaining, timeout: 5, global: global)
            }
            if remaining.isEmpty { break }
            if wait, !isLast { console.progress("still running: \(remaining.map(\.label).joined(separator: ", "))") }
        }
        for t in targets where t.isGone(global) { removeRunFiles(t, global: global) }
        if !remaining.isEmpty {
            if wait || methods.contains(.kill) {
                console.error("still running: \(remaining.map(\.label).joined(separator: ", "))")
            }
            return wait || methods.contains(.kill) ? .soft : status
        }
        return status
    }

    /// ACPI power button through QMP (or the human monitor of VMs the
    /// original started), repeated each second: a guest still booting
    /// misses a press made before its driver is loaded.
    static func powerOff(_ targets: [Target], timeout: Double, global: GlobalConfig, console: Console) -> [Target] {
        var reachable: [Target] = []
        var unreachable: [Target] = []
        for t in targets {
            if press(t, global: global) { reachable.append(t) } else {
                console.notice("\(t.label) has no monitor socket vmdown can use; skipping the ACPI request")
                unreachable.append(t)
            }
        }
        guard timeout > 0 else { return targets }
        let deadline = SystemClock.now() + timeout
        var lastPress = SystemClock.now()
        while SystemClock.now() < deadline {
            reachable = reachable.filter { !$0.isGone(global) }
            if reachable.isEmpty { break }
            if SystemClock.now() - lastPress >= 1 {
                for t in reachable { _ = press(t, global: global) }
                lastPress = SystemClock.now()
            }
            SystemClock.sleep(0.05)
        }
        return reachable + unreachable
    }

    static func press(_ t: Target, global: GlobalConfig) -> Bool {
        if let dir = t.runDirectory {
            let qmp = dir.appendingPathComponent(global.fileNames.qmp)
            if FileSystem.exists(qmp), (try? QMPClient(path: qmp).execute("system_powerdown")) != nil { return true }
        }
        guard let monitor = t.process.monitorSocket(home: t.home), let m = try? HumanMonitor(path: monitor) else { return false }
        return (try? m.execute("system_powerdown")) != nil
    }

    /// Sends a signal; a target that cannot be signalled (another user's) is
    /// reported and dropped, and the command ends with status 3.
    static func signal(_ targets: [Target], _ sig: Int32, console: Console, failed: inout ExitCode) -> [Target] {
        targets.filter { t in
            if kill(t.process.pid, sig) == 0 || errno == ESRCH { return true }
            console.error("\(t.label): cannot signal it: \(FileSystem.errnoMessage())")
            failed = .soft
            return false
        }
    }

    /// QEMU cannot remove sockets with relative paths once it has changed to
    /// `/`, nor its pid file when killed; with the VM stopped, they are only
    /// debris, and so is a bare boot's run-time directory.
    static func removeRunFiles(_ t: Target, global: GlobalConfig) {
        guard let dir = t.runDirectory else { return }
        guard let home = t.home else {
            RuntimeDirectory.removeIfUnused(dir, global: global)
            return
        }
        // A vmup holding the lock may be starting the VM again: its files are
        // its own (it removes stale ones itself).
        guard let lock = try? HomeLock.acquire(home, global: global, wait: 0, readOnlyHome: true) else { return }
        if RunningState.process(home: home, global: global) == nil {
            LaunchExecutor.removeRunFiles(dir, global: global)
        }
        lock.release()
        RuntimeDirectory.removeIfUnused(dir, global: global)
    }

    static func waitGone(_ targets: [Target], timeout: Double, global: GlobalConfig) -> [Target] {
        var left = targets
        let deadline = SystemClock.now() + timeout
        while true {
            left = left.filter { !$0.isGone(global) }
            if left.isEmpty || SystemClock.now() >= deadline { return left }
            SystemClock.sleep(0.02)
        }
    }
}
