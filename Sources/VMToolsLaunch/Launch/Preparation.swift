import VMToolsCore
import VMToolsQEMU

#if canImport(Glibc)
import Glibc
#endif

/// The executor's first job (Docs/ARCHITECTURE.md, "The launch pipeline"):
/// asks the plan's probes, converts imported images, removes stale
/// sockets, makes the missing disks, directories and variable stores,
/// grows disks, builds seeds and (unless QEMU will not start) the generated
/// files. What it made it records, and `rollback` removes again.
struct Preparation {
    let command: QemuCommand
    let console: Console
    /// Disks and images made: a caller that fails later (vmcreate) removes them.
    private(set) var createdFiles: [String] = []
    /// Directories made (a TPM's state), removed with all they hold if the start fails.
    private(set) var createdDirectories: [String] = []
    /// Files generated for QEMU to open (ISOs), removed once it has started.
    private(set) var generatedFiles: [String] = []

    init(_ command: QemuCommand, console: Console) {
        self.command = command
        self.console = console
    }

    var plan: LaunchPlan { command.plan }

    /// Carries the steps out; on failure what they made is removed.
    mutating func run(generating: Bool) throws {
        if generating { try askProbes() }
        try checkWrites()
        do {
            try convertImages()
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

    /// The plan's questions to the host (`qemu -chardev help`): asked before
    /// anything is written, so a QEMU that lacks what the settings need
    /// fails the start naming the setting.
    func askProbes() throws {
        for p in plan.probes {
            guard let r = try? Subprocess(p.executable, p.arguments, environment: command.environment).run() else {
                throw command.invalid(p.setting, "cannot run \(([p.executable] + p.arguments).joined(separator: " "))")
            }
            guard r.stdoutText.contains(p.expects) else { throw command.invalid(p.setting, p.missing) }
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
    func checkWrites() throws {
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
        var paths = p.disksToCreate.map(\.path) + p.conversions.map(\.destination) + [p.firmwareStore?.path, p.displayPassword].compactMap { $0 } + p.generatedFiles.map(\.path)
        paths += p.seedVolumes.flatMap { s in [s.path] + (s.isDirectory ? s.files.map { s.path.appendingPathComponent($0.name) } : []) }
        paths += p.helpers.flatMap { [$0.log, $0.forwardsFile, $0.readyPath].compactMap { $0 } }
        for path in paths { try FileSystem.refuseLink(path) }
        for d in p.directoriesToCreate + p.seedVolumes.filter(\.isDirectory).map(\.path) { try FileSystem.checkOwnDirectory(d) }
    }

    /// The imported images, before anything else. Ctrl-C or SIGTERM during
    /// a conversion: what was made goes before the command ends (vmtools(7)
    /// CRASH SAFETY), by the rollback. An unpacked archive goes either way.
    private mutating func convertImages() throws {
        guard !plan.conversions.isEmpty else { return }
        defer { for dir in Set(plan.conversions.compactMap(\.unpacked)) { FileSystem.removeTree(dir) } }
        try Interrupt.deferring {
            for c in plan.conversions {
                try Self.convert(c, environment: command.environment, console: console)
                createdFiles.append(c.destination)
            }
        }
    }

    /// `qemu-img convert -f FORMAT -O qcow2`; a failed one leaves no file.
    static func convert(_ c: LaunchPlan.Conversion, environment: [String: String], console: Console) throws {
        if c.overlay { return try QemuImg.createOverlay(c.destination, backing: c.source, format: c.format, size: c.size, environment: environment) }
        let qemuImg = try QemuImg.executable(c.subject, environment: environment, purpose: "cannot convert")
        var args = ["convert", "-f", c.format, "-O", "qcow2"]
        if c.compress { args.append("-c") }
        else if c.preallocation != "off" { args += ["-o", "preallocation=\(c.preallocation)"] }
        args += ["--", c.source, c.destination]
        console.progress("converting \(c.source) to \(c.destination)")
        var process = Subprocess(qemuImg, args)
        process.endsOnInterrupt = true
        let r = try process.run()
        guard r.status == 0 else {
            try? FileSystem.removeFile(c.destination)
            throw VMToolsError(.failure, c.subject, "conversion failed: \(r.stderrText.trimmingTrailingWhitespace())")
        }
    }

    /// Grows the disks a size setting asks for. Not undone when a later step
    /// fails: the disk has the size its setting names, and the next start
    /// finds nothing to do.
    private func growDisks() throws {
        if plan.snapshotBeforeGrowing, !plan.disksToGrow.isEmpty { try snapshotBeforeGrowing() }
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

    /// Removes what `run` made.
    func rollback() {
        LaunchExecutor.removeFiles(createdFiles + generatedFiles)
        for d in createdDirectories.reversed() { FileSystem.removeTree(d) }
    }

    /// QEMU did not start: what this start made is removed with `logs`,
    /// the generated files stay for the caller's clean-up.
    mutating func undo(logs: [String]) {
        LaunchExecutor.removeFiles(createdFiles + logs)
        for d in createdDirectories.reversed() { FileSystem.removeTree(d) }
        createdFiles.removeAll()
        createdDirectories.removeAll()
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

    /// Eight characters: VNC uses no more. Letters and digits that cannot
    /// be mistaken for one another.
    static func newDisplayPassword() throws -> String {
        let alphabet = Array("abcdefghjkmnpqrstuvwxyzACDEFGHJKLMNPQRTUVWXY3479")
        return String(try SystemRandom.bytes(8).map { alphabet[Int($0) % alphabet.count] })
    }
}
