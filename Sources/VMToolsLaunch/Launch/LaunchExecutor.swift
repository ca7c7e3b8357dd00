import VMToolsCore
import VMToolsQEMU

#if canImport(Glibc)
import Glibc
#endif

/// Carries a plan out (Docs/ARCHITECTURE.md, "The launch pipeline"), a
/// short sequence of jobs, each its own type: `Preparation` (probes,
/// conversions and files, with rollback), `PortChooser` (the plan's late
/// values), `HelperProcesses` (start, readiness, supervision), QEMU's own
/// start here, then `ReadBack` (QMP, ssh.config). It takes the plan and
/// nothing else of the modules: no module code runs while it works. The
/// caller holds the VM's lock (or a bare boot's directory flock).
package struct LaunchExecutor {
    private(set) var command: QemuCommand
    let name: String
    let console: Console
    private var preparation: Preparation
    private var helpers = HelperProcesses()
    /// Where the guest's SSH forward listens, once QEMU said (`vmup -w` waits on it).
    package private(set) var sshEndpoint: (address: String, port: Int)?

    package init(_ command: QemuCommand, name: String, console: Console) {
        self.command = command
        self.name = name
        self.console = console
        preparation = Preparation(command, console: console)
    }

    package var plan: LaunchPlan { command.plan }
    /// Disks this executor made: a caller that fails later (vmcreate) removes them.
    package var createdFiles: [String] { preparation.createdFiles }

    /// `vmup -n`: the plan's notices, what a start would do, and (with -v) the command line.
    package func printPlan() {
        let shown = plan.preview
        for n in shown.notices(withDisks: LaunchPlan.wouldCreate) { console.notice(n) }
        for line in shown.otherDryRunLines { console.notice(line) }
        printCommandLine(shown)
    }

    /// The notices, the disks made, and (with -v) the command line of a plan
    /// being carried out.
    package func announce() {
        let made = Set(createdFiles)
        let shown = plan.preview
        for n in shown.notices(withDisks: { made.contains($0.path) ? "created \($0.path) (\($0.size))" : nil }) { console.notice(n) }
        if let f = plan.firmwareStore, made.contains(f.path) { console.notice("created \(f.path) (UEFI variables from \(f.template))") }
        printCommandLine(shown)
    }

    private func printCommandLine(_ shown: LaunchPlan) {
        guard console.verbosity >= 3 else { return }
        console.print()
        console.print("Qemu command-line:")
        console.print(shown.argv.map(shellQuote).joined(separator: " "))
    }

    /// `vmup -n` refuses what a start would (Preparation.checkWrites).
    package func checkWrites() throws { try preparation.checkWrites() }

    /// The preparation: probes (unless QEMU will not start: `vmcreate -n`),
    /// conversions, disks, and the generated files. On failure what it made
    /// is removed again.
    package mutating func prepare(generating: Bool = true) throws { try preparation.run(generating: generating) }

    /// Removes what `prepare` made.
    func rollback() { preparation.rollback() }

    /// The plan's late values, chosen now and filled in: nothing is left to
    /// choose, and the text is what QEMU and its helpers get.
    mutating func choosePorts() throws {
        guard !plan.portChoices.isEmpty else { return }
        command.plan = plan.filled(try PortChooser.choose(plan.portChoices, command: command, vmName: name))
    }

    /// Starts QEMU (and its helpers): in the foreground it returns when QEMU
    /// has exited, daemonised once QEMU holds the lock on its pid file.
    /// A snapshot's resume marker goes after this one attempt, whatever its
    /// outcome (vmsnap(1), RESUMING): a failing `-loadvm` must not fail
    /// every later start.
    package mutating func start() throws {
        guard let marker = plan.resume else { return try startQEMU() }
        defer { marker.remove() }
        if let name = marker.name {
            console.notice("resuming the RAM and devices saved in snapshot \(name)")
        } else {
            console.warning("ignoring \(marker.path): \(marker.problem ?? "not a snapshot name")")
        }
        do { try startQEMU() } catch { throw resumeFailure(error) }
    }

    private mutating func startQEMU() throws {
        let generated = preparation.generatedFiles
        defer { Self.removeFiles(generated) }
        do {
            try choosePorts()
            try USBHost.check(plan.usbDevices, vmName: name, console: console, environment: command.environment)
        } catch {
            rollback()
            throw error
        }
        announce()
        guard let exe = plan.argv.first, let runDirectory = command.runDirectory else { return }
        guard Subprocess.which(exe, path: command.environment["PATH"]) != nil else {
            rollback()
            throw VMToolsError(.failure, exe, "not found, or not executable (cfg_qemu_cmdprefix; Debian: apt-get install qemu-system-x86)")
        }
        let global = command.global
        let pidFile = runDirectory.appendingPathComponent(global.fileNames.pid)
        try FileSystem.removeFile(pidFile, sync: false)
        var qemu = Subprocess(exe, Array(plan.argv.dropFirst()), workingDirectory: runDirectory)
        // A socket's mode is 0777 less the umask, so 077 would leave them 0700.
        qemu.umask = HelperProcesses.privateUmask
        let helperLogs = plan.helpers.compactMap(\.log).filter { !FileSystem.lexists($0) }
        do {
            try HelperProcesses.recordForwards(plan)
            try helpers.start(plan, in: runDirectory)
        } catch {
            undoFailedStart(runDirectory, logs: [])
            throw error
        }
        defer { helpers.stop() }
        // QEMU opens the serial log by name and follows a link there: it is
        // made here first, 0600 and never through a link (checkWrites refused
        // one). Not an fd passed with -add-fd: the argv would name an fd
        // instead of the file vmps and vminfo show, and the file is in the
        // home, which only someone who already owns the VM can change meanwhile.
        let logs = [plan.serialLog].compactMap { $0 }
        let newLogs = logs.map { runDirectory.appendingPathComponent($0) }.filter { !FileSystem.lexists($0) }
        do {
            for log in logs { try FileSystem.createPrivate(runDirectory.appendingPathComponent(log)) }
        } catch {
            undoFailedStart(runDirectory, logs: newLogs + helperLogs)
            throw error
        }
        if !command.daemonize {
            console.info("\(name): virtual machine running in the foreground")
            let status: Int32
            do { status = try qemu.runInteractive() } catch {
                undoFailedStart(runDirectory, logs: newLogs + helperLogs)
                throw error
            }
            // QEMU is gone: what it left is debris, once its helpers are.
            helpers.stop()
            Self.removeRunFiles(runDirectory, global: global)
            guard status == 0 else { throw VMToolsError(.failure, name, "QEMU exited with status \(status)") }
            return
        }
        let r: Subprocess.Result
        do { r = try qemu.run() } catch {
            undoFailedStart(runDirectory, logs: newLogs + helperLogs)
            throw error
        }
        guard r.status == 0 else {
            undoFailedStart(runDirectory, logs: newLogs + helperLogs)
            let why = r.stderrText.split(separator: "\n").first.map(String.init) ?? "exit status \(r.status)"
            throw VMToolsError(.failure, command.home ?? name, "QEMU failed to start: \(why)")
        }
        // A daemonising QEMU sets its umask to 027: its sockets are made ours alone here.
        for name in global.fileNames.control + logs {
            let path = runDirectory.appendingPathComponent(name)
            var st = stat()
            if lstat(path, &st) == 0, [S_IFSOCK, S_IFREG].contains(st.st_mode & S_IFMT) { chmod(path, 0o600) }
        }
        // "Running" is QEMU's lock on its pid file (Docs/ARCHITECTURE.md);
        // QEMU takes it before its parent exits, the wait is a safety margin.
        var pid = RunningState.process(pidFile: pidFile)?.pid
        let deadline = SystemClock.now() + 2
        while pid == nil, SystemClock.now() < deadline {
            SystemClock.sleep(0.02)
            pid = RunningState.process(pidFile: pidFile)?.pid
        }
        console.info("\(name): virtual machine started" + (pid.map { " (pid \($0))" } ?? ""))
        var readBack = ReadBack(plan, name: name, console: console)
        readBack.run(qmp: runDirectory.appendingPathComponent(global.fileNames.qmp))
        sshEndpoint = readBack.sshEndpoint
        // Beside a daemonised QEMU, helpers outlive this process (LaunchPlan.HelperProcess).
        helpers.release()
    }

    /// QEMU did not start (or a helper failed before it): the helpers stop
    /// first, since swtpm writes its state until it goes, then what this
    /// start made is removed, with `logs` and the run files.
    private mutating func undoFailedStart(_ runDirectory: String, logs: [String]) {
        helpers.stop()
        preparation.undo(logs: logs)
        Self.removeRunFiles(runDirectory, global: command.global)
    }

    /// Writes what the start made part of the VM (vm.settings(5): a disk
    /// made from a createsize alone) into its settings file, under its lock.
    package func saveSettings(home: String) throws {
        guard !plan.settingsToSave.isEmpty else { return }
        var patch = SettingsPatch()
        for (name, value) in plan.settingsToSave { patch.values[name] = value }
        let tx = Transaction(anchor: home, environment: command.environment)
        do {
            try patch.write(to: home, global: command.global, tx)
            tx.commit()
        } catch {
            tx.rollback()
            throw error
        }
    }

    /// A bare boot's own run-time directory, so vmdown, vmmon and vmps reach
    /// it as any VM (Docs/vmup.1): made before planning, since the plan names
    /// its pid file. The flock keeps another vmup's clean-up off it. With -n
    /// a placeholder, nothing made.
    package static func bareRunDirectory(dryRun: Bool, global: GlobalConfig) throws -> (path: String, flock: DirectoryFlock?) {
        guard !dryRun else { return (RuntimeDirectory.base.appendingPathComponent("bare-XXXXXX"), nil) }
        RuntimeDirectory.removeStale(global: global)
        let dir = try RuntimeDirectory.makeBare()
        return (dir, DirectoryFlock(dir))
    }

    /// After QEMU has exited (or failed to start): its sockets and pid file,
    /// and a run-time directory of its own. The caller holds the VM's lock,
    /// or the flock of a bare boot's directory, so no other QEMU uses them.
    package static func removeRunFiles(_ dir: String, global: GlobalConfig) {
        // passt's socket, log and forwards record (NetworkingModule).
        for name in (try? FileSystem.listDirectory(dir)) ?? [] where VMFileNames.isNumberedWork(name) {
            unlink(dir.appendingPathComponent(name))
        }
        if RuntimeDirectory.isOwnRunDirectory(dir) {
            RuntimeDirectory.removeFiles(dir, global: global)
            RuntimeDirectory.removeIfUnused(dir, global: global)
            return
        }
        for name in global.fileNames.control {
            let path = dir.appendingPathComponent(name)
            var st = stat()
            if lstat(path, &st) == 0, [S_IFSOCK, S_IFREG].contains(st.st_mode & S_IFMT) { unlink(path) }
        }
    }

    static func removeFiles(_ files: [String]) {
        for f in files {
            // A directory comes after its files (a seed directory): empty by then.
            if FileSystem.isDirectory(f), !FileSystem.isSymlink(f) { rmdir(f) } else { try? FileSystem.removeFile(f) }
        }
    }
}
