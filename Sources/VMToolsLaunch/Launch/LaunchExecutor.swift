import VMToolsCore
import VMToolsQEMU

#if canImport(Glibc)
import Glibc
#endif

/// Carries a plan out (Docs/ARCHITECTURE.md, "The launch pipeline"): makes
/// its files, starts QEMU and its helpers, reads back what QEMU chose, and
/// undoes what it made when a step fails. The caller holds the VM's lock
/// (or a bare boot's directory flock).
package struct LaunchExecutor {
    private(set) var command: QemuCommand
    let name: String
    let console: Console
    /// Disks this executor made: a caller that fails later (vmcreate) removes them.
    package private(set) var createdFiles: [String] = []
    /// Directories this executor made (a TPM's state), removed with all
    /// they hold if the start fails.
    private(set) var createdDirectories: [String] = []
    /// Files `prepare` generated for QEMU to open (ISOs).
    private(set) var generatedFiles: [String] = []
    private var helpers: [Subprocess.Running] = []
    /// Where the guest's SSH forward listens, once QEMU said (`vmup -w` waits on it).
    package private(set) var sshEndpoint: (address: String, port: Int)?

    package init(_ command: QemuCommand, name: String, console: Console) {
        self.command = command
        self.name = name
        self.console = console
    }

    package var plan: LaunchPlan { command.plan }

    /// Files made before the plan (a converted image), removed as the
    /// executor's own if QEMU does not start.
    package mutating func adopt(_ files: [String]) { createdFiles += files }

    /// `vmup -n`: the plan's notices, what a start would do, and (with -v) the command line.
    package func printPlan() {
        for n in plan.notices(withDisks: LaunchPlan.wouldCreate) { console.notice(n) }
        for line in plan.otherDryRunLines { console.notice(line) }
        printCommandLine()
    }

    /// The notices, the disks made, and (with -v) the command line of a plan
    /// being carried out.
    package func announce() {
        let made = Set(createdFiles)
        for n in plan.notices(withDisks: { made.contains($0.path) ? "created \($0.path) (\($0.size))" : nil }) { console.notice(n) }
        if let f = plan.firmwareStore, made.contains(f.path) { console.notice("created \(f.path) (UEFI variables from \(f.template))") }
        printCommandLine()
    }

    private func printCommandLine() {
        guard console.verbosity >= 3 else { return }
        console.print()
        console.print("Qemu command-line:")
        console.print(plan.argv.map(shellQuote).joined(separator: " "))
    }

    /// Removes stale sockets, makes the missing disks and (unless QEMU will
    /// not start: `vmcreate -n`) the generated files. On failure what it
    /// made is removed again.
    package mutating func prepare(generating: Bool = true) throws {
        try checkWrites()
        do {
            for f in plan.filesToRemove { try FileSystem.removeFile(f, sync: false) }
            for d in plan.directoriesToCreate where generating && !FileSystem.lexists(d) {
                guard mkdir(d, 0o700) == 0 else { throw VMToolsError(.failure, d, "cannot create: \(FileSystem.errnoMessage())") }
                chmod(d, 0o700)
                createdDirectories.append(d)
                FileSystem.syncDirectory(d.deletingLastPathComponent)
            }
            for d in plan.disksToCreate {
                try QemuImg.createDisk(d.path, size: d.size, preallocation: d.preallocation, environment: command.environment)
                createdFiles.append(d.path)
            }
            if let f = plan.firmwareStore {
                try QemuImg.convertAtomically(f.template, format: f.templateFormat, to: f.path, environment: command.environment)
                createdFiles.append(f.path)
            }
            try growDisks()
            try buildSeedVolumes(generating: generating)
            if let file = plan.displayPassword, generating {
                try FileSystem.writeAtomically(Array(try Self.newDisplayPassword().utf8), to: file, mode: 0o600)
            }
            for g in plan.generatedFiles where generating {
                switch g.kind {
                case .isoFromDirectory(let dir): try Self.makeISO(g.path, from: dir, environment: command.environment)
                }
                generatedFiles.append(g.path)
            }
        } catch {
            rollback()
            throw error
        }
    }

    /// Refuses, before anything is written or started, a symbolic link at
    /// a name this start (or QEMU, swtpm, passt, the ISO maker, qemu-img)
    /// would write: every name vmtools owns in the home and run-time
    /// directory (`VMFileNames.written`, passt's numbered files), whether
    /// this plan writes it or not, and every path the plan creates. A
    /// directory written into must be a real one of ours. A VM directory
    /// from elsewhere cannot so lead a write outside it (vmtools(7), SECURITY);
    /// the writes themselves do not follow links either, this says which.
    /// It only looks (lstat), so `vmup -n` refuses what a start would.
    package func checkWrites() throws {
        var directories = [command.runDirectory].compactMap { $0 }
        if let home = command.home, !directories.contains(home), FileSystem.isWritable(home) { directories.append(home) }
        for dir in directories {
            // Its owner could swap a name for a link between this check and a helper's open.
            try FileSystem.checkOwnDirectory(dir)
            let numbered = ((try? FileSystem.listDirectory(dir)) ?? []).filter(VMFileNames.isNumberedWork).sorted(by: bytewiseLess)
            let names = command.global.fileNames.written + numbered
            for name in names { try FileSystem.refuseLink(dir.appendingPathComponent(name)) }
            for name in [VMFileNames.tpmDirectory, VMFileNames.tftpDirectory] { try FileSystem.checkOwnDirectory(dir.appendingPathComponent(name)) }
        }
        let p = plan
        var paths = p.disksToCreate.map(\.path) + [p.firmwareStore?.path, p.displayPassword].compactMap { $0 } + p.generatedFiles.map(\.path)
        paths += p.seedVolumes.flatMap { s in [s.path] + (s.isDirectory ? s.files.map { s.path.appendingPathComponent($0.name) } : []) }
        paths += p.helpers.flatMap { [$0.log, $0.forwardsFile, $0.readyPath].compactMap { $0 } }
        for path in paths { try FileSystem.refuseLink(path) }
        for d in p.directoriesToCreate + p.seedVolumes.filter(\.isDirectory).map(\.path) { try FileSystem.checkOwnDirectory(d) }
    }

    /// Grows the disks a size setting asks for. Not undone when a later step
    /// fails: the disk has the size its setting names, and the next start
    /// finds nothing to do.
    private func growDisks() throws {
        for g in plan.disksToGrow {
            try QemuImg.grow(g.path, format: g.format, to: g.to, environment: command.environment)
            console.notice("grew \(g.path) from \(LaunchPlan.DiskToGrow.text(g.from)) to \(LaunchPlan.DiskToGrow.text(g.to))")
        }
    }

    /// Seeds whose inputs changed; a new one is removed with the disks if
    /// the start fails, a rebuilt one stays (it is right for the new inputs).
    private mutating func buildSeedVolumes(generating: Bool) throws {
        for s in plan.seedVolumes where generating {
            let isNew = !FileSystem.lexists(s.path)
            try s.build(environment: command.environment)
            if isNew {
                createdFiles += s.isDirectory ? s.files.map { s.path.appendingPathComponent($0.name) } + [s.path] : [s.path]
            }
        }
    }

    /// Removes what `prepare` made.
    func rollback() {
        Self.removeFiles(createdFiles + generatedFiles)
        for d in createdDirectories.reversed() { FileSystem.removeTree(d) }
    }

    /// QEMU did not start (or a helper failed before it): the helpers stop
    /// first, since swtpm writes its state until it goes, then what this
    /// start made is removed, with `logs` and the run files.
    private mutating func undoFailedStart(_ runDirectory: String, logs: [String]) {
        stopHelpers()
        Self.removeFiles(createdFiles + logs)
        for d in createdDirectories.reversed() { FileSystem.removeTree(d) }
        createdFiles.removeAll()
        createdDirectories.removeAll()
        Self.removeRunFiles(runDirectory, global: command.global)
    }

    /// Packs a directory into an ISO; QEMU keeps it open, and the file is
    /// removed once QEMU has started.
    static func makeISO(_ iso: String, from dir: String, environment: [String: String]) throws {
        guard let r = try ISOTool.pack(dir, into: iso, environment: environment) else {
            throw VMToolsError(.failure, dir, "sharing a directory as a CD-ROM needs genisoimage or xorriso (Debian: apt-get install xorriso)")
        }
        guard r.status == 0 else {
            throw VMToolsError(.failure, dir, "cannot make an ISO: \(r.stderrText.trimmingTrailingWhitespace())")
        }
    }

    /// Starts QEMU (and its helpers): in the foreground it returns when QEMU
    /// has exited, daemonised once QEMU holds the lock on its pid file.
    package mutating func start() throws {
        let generated = generatedFiles
        defer { Self.removeFiles(generated) }
        do {
            try chooseSpicePort()
            try chooseHelperPorts()
            try checkUSBDevices()
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
        // Sockets, pid file and logs QEMU and its helpers create are 0600,
        // whatever the caller's umask (Docs/vmup.1, "Files in the VM home"):
        // a socket's mode is 0777 less the umask, so 077 would leave them 0700.
        qemu.umask = Self.privateUmask
        let helperLogs = plan.helpers.compactMap(\.log).filter { !FileSystem.lexists($0) }
        do {
            try recordHelperForwards()
            try startHelpers(in: runDirectory)
        } catch {
            undoFailedStart(runDirectory, logs: [])
            throw error
        }
        defer { stopHelpers() }
        // QEMU opens the serial log by name and follows a link there: it is
        // made here first, 0600 and never through a link (checkWrites refused
        // one). Not an fd passed with -add-fd: the argv would name an fd
        // instead of the file vmps and vminfo show, and the file is in the
        // home, which only someone who already owns the VM can change meanwhile.
        let logs = [global.fileNames.serial].filter { log in plan.argv.contains { $0.contains("./" + log) } }
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
            stopHelpers()
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
        readBack(qmp: runDirectory.appendingPathComponent(global.fileNames.qmp))
        // Beside a daemonised QEMU, helpers outlive this process (LaunchPlan.HelperProcess).
        helpers.removeAll()
    }

    /// SPICE has no `to=`: the first port that binds, chosen right before
    /// QEMU starts (the window for a race is this process's start-up of QEMU).
    mutating func chooseSpicePort() throws {
        guard let choice = plan.spicePort else { return }
        guard let address = Self.resolve(choice.iface) else {
            throw command.invalid(SettingKey.displayIface, "cannot resolve this address or host name")
        }
        guard let port = (choice.lowest...65535).first(where: { Self.isFree(port: $0, address: address) }) else {
            throw command.invalid(SettingKey.displayIface, "no free port from \(choice.lowest)")
        }
        command.plan.argv[choice.argument] = DisplayModule.spiceOption(iface: choice.iface, port: port, access: choice.access)
        command.plan.notices[choice.notice] = DisplayModule.spiceNotice(vmName: choice.vmName, iface: choice.iface, port: port)
        command.plan.spicePort = nil
    }

    /// A helper's forward from port 0 (passt cannot say which port the
    /// kernel gave it): the port the kernel offers now, like slirp's. The
    /// sockets stay bound until every port is chosen, so no two are the same.
    mutating func chooseHelperPorts() throws {
        var held: [Int32] = []
        defer { for fd in held { close(fd) } }
        for (i, h) in plan.helperForwards.enumerated() where h.forward.hostPort == 0 {
            let f = h.forward
            let fd = socket(AF_INET, Int32((f.proto == .tcp ? SOCK_STREAM : SOCK_DGRAM).rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw VMToolsError(.failure, name, "cannot choose a port for \(f.description): \(FileSystem.errnoMessage())") }
            held.append(fd)
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_addr.s_addr = inet_addr(f.address)
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let ok = withUnsafeMutablePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
            }
            guard ok else {
                throw command.invalid(SettingKey.nic(h.nic).forward, "no free port for \(f.description): \(FileSystem.errnoMessage())")
            }
            command.plan.helperForwards[i].forward.hostPort = Int(UInt16(bigEndian: sa.sin_port))
            command.plan.helpers[h.helper].arguments[h.argument] = h.spec(command.plan.helperForwards[i].forward)
        }
    }

    /// Each host USB device's node must open read-write for us: otherwise
    /// the error names the node and the udev rule that grants access; vmtools
    /// never asks for root. One not plugged in is waited for by QEMU.
    func checkUSBDevices() throws {
        let host = USBHost(environment: command.environment)
        for check in plan.usbDevices {
            guard let found = host.find(check.device) else {
                console.notice("\(name): \(check.setting) \(check.device.description) is not plugged in: QEMU attaches it when it is")
                continue
            }
            guard let why = USBHost.openError(found.node) else { continue }
            let rule = USBHost.udevRule(vendor: found.vendor, product: found.product)
            throw VMToolsError(.failure, found.node, "\(check.setting) \(check.device.description): cannot open read-write (\(why)); "
                + "a udev rule grants access, e.g. in /etc/udev/rules.d/70-vmtools-usb.rules: \(rule) (then replug the device)")
        }
    }

    /// After QEMU has started: what it chose, asked over QMP.
    private mutating func readBack(qmp: String) {
        for fact in plan.readBack {
            switch fact {
            case .vncPort(let text):
                if let url = QMPClient.vncURL(socket: qmp) {
                    console.notice("\(text) \(url)")
                } else {
                    console.notice("\(text) VNC (QEMU did not say which port; see vmps)")
                }
            case .forwards(let ssh):
                readBackForwards(qmp: qmp, ssh: ssh)
            }
        }
    }

    /// Announces the forwards' real ports and writes ssh.config for the
    /// first to guest TCP port 22 (vmup(1)); QEMU runs on whatever fails here.
    private mutating func readBackForwards(qmp: String, ssh: LaunchPlan.SSHPlan?) {
        var forwards: [LiveForward] = []
        if plan.argv.contains(where: LaunchPlan.isUserForward) {
            if let live = QMPClient.forwards(socket: qmp) {
                forwards = live
            } else {
                console.notice("\(name): port forwards (QEMU did not say which ports; see vminfo)")
            }
        }
        forwards += plan.helperForwards.map {
            LiveForward(nic: $0.nic, proto: $0.forward.proto.rawValue, address: $0.forward.address, hostPort: $0.forward.hostPort, guestPort: $0.forward.guestPort)
        }
        for f in forwards { console.notice("\(name): forwarding \(f.description)") }
        guard let f = forwards.first(where: { $0.proto == "tcp" && $0.guestPort == 22 }) else { return }
        sshEndpoint = (f.connectAddress, f.hostPort)
        // A read-only home (Docs/vmup.1) gets none.
        guard let ssh, let home = ssh.home, FileSystem.isWritable(home) else { return }
        let config = SSHConfig(name: ssh.name, home: home, address: f.connectAddress, port: f.hostPort,
                               user: ssh.user, identityFile: ssh.identityFile, instanceID: ssh.instanceID)
        do {
            try config.write()
            console.notice("\(name): \(SSHConfig.command(home: home, name: ssh.name))")
        } catch let e as VMToolsError {
            console.warning(e.description)
        } catch {
            console.warning("\(config.path): \(error)")
        }
    }

    /// Each helper's forwards with their real ports, for vminfo and vmps
    /// (LaunchPlan.HelperProcess.forwardsFile); removed with the run files.
    private func recordHelperForwards() throws {
        for (i, h) in plan.helpers.enumerated() {
            guard let file = h.forwardsFile else { continue }
            let lines = plan.helperForwards.filter { $0.helper == i }.map {
                LiveForward(nic: $0.nic, proto: $0.forward.proto.rawValue, address: $0.forward.address,
                            hostPort: $0.forward.hostPort, guestPort: $0.forward.guestPort).description + "\n"
            }
            try FileSystem.writeAtomically(Array(lines.joined().utf8), to: file, mode: 0o600)
        }
    }

    static let privateUmask: mode_t = 0o177

    private mutating func startHelpers(in dir: String) throws {
        for h in plan.helpers {
            do {
                var helper = Subprocess(h.executable, h.arguments, workingDirectory: dir)
                helper.umask = Self.privateUmask
                let running = try helper.start(output: h.log)
                helpers.append(running)
                if let path = h.readyPath {
                    let deadline = SystemClock.now() + 10
                    while !FileSystem.exists(path), SystemClock.now() < deadline {
                        // One that gave up (passt without a routable interface) says why in its log.
                        if let status = running.exitStatus() {
                            helpers.removeLast()
                            throw VMToolsError(.failure, h.executable,
                                               "exited with status \(status) before making its socket \(path)" + Self.lastLine(of: h.log))
                        }
                        SystemClock.sleep(0.02)
                    }
                    guard FileSystem.exists(path) else {
                        throw VMToolsError(.failure, h.executable, "made no socket \(path) within 10 seconds" + Self.lastLine(of: h.log))
                    }
                }
            } catch {
                stopHelpers()
                throw error
            }
        }
    }

    /// `: LINE`, the last line a helper logged, or nothing.
    static func lastLine(of log: String?) -> String {
        guard let log, let text = (try? FileSystem.readTextIfExists(log)) ?? nil else { return "" }
        // passt without a system logger says so on every line.
        let lines = text.split(separator: "\n").filter { !$0.hasPrefix("Failed to send") && !$0.allSatisfy(\.isWhitespace) }
        return lines.last.map { ": " + String($0).escapingControlCharacters } ?? ""
    }

    private mutating func stopHelpers() {
        for h in helpers { h.terminate() }
        helpers.removeAll()
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

    /// Eight characters: VNC uses no more. Letters and digits that cannot
    /// be mistaken for one another.
    static func newDisplayPassword() throws -> String {
        let alphabet = Array("abcdefghjkmnpqrstuvwxyzACDEFGHJKLMNPQRTUVWXY3479")
        return String(try SystemRandom.bytes(8).map { alphabet[Int($0) % alphabet.count] })
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

    /// The first address a host name or literal stands for.
    static func resolve(_ host: String) -> (family: Int32, bytes: [UInt8])? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return nil }
        defer { freeaddrinfo(list) }
        guard let a = first.pointee.ai_addr else { return nil }
        let bytes = [UInt8](UnsafeRawBufferPointer(start: UnsafeRawPointer(a), count: Int(first.pointee.ai_addrlen)))
        return (first.pointee.ai_family, bytes)
    }

    static func isFree(port: Int, address: (family: Int32, bytes: [UInt8])) -> Bool {
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var bytes = address.bytes
        // sin_port and sin6_port sit at the same offset, after the family.
        bytes[2] = UInt8(port >> 8)
        bytes[3] = UInt8(port & 0xFF)
        return bytes.withUnsafeBytes { raw in
            bind(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
        } == 0
    }
}
