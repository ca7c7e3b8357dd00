import VMToolsCore
import VMToolsQEMU
import VMToolsLaunch

#if canImport(Glibc)
import Glibc
#endif

/// `vmfix`: find and repair what a crash, a killed command or a plain `mv`
/// left behind (vmfix(1)). Tests run in the order b, l, d, then per
/// VM p, s; reports go to stderr; finding anything means exit status 3.
///
/// `-b` is where crash safety ends: a backup directory whose journal is
/// still there belongs to an operation that was killed, and replaying the
/// journal puts the tree back as it was before that operation.
public enum VMFixCommand: Command {
    public static let spec = CommandSpec(
        name: "vmfix",
        summary: "detect and repair inconsistencies in VM homes",
        options: [
            OptionSpec("A", "every test, cosmetic ones included (-bdlps)"),
            OptionSpec("a", "every test of a real defect (-blps)"),
            OptionSpec("b", "leftover backup directories: undo interrupted operations; leftover import and export directories"),
            OptionSpec("d", "leftover work files: qemu.pid, monitor sockets, serial.log"),
            OptionSpec("H", "accept the host paths outside its tree that each VM's settings hand to the guest, after printing them"),
            OptionSpec("l", "leftover lock files"),
            OptionSpec("n", "check only, change nothing"),
            OptionSpec("p", "parent and children links"),
            OptionSpec("r", "recursive: every directory below each operand"),
            OptionSpec("s", "storage paths and backing files"),
        ],
        operands: "[directory ...]",
        operandCompletion: .directory,
        exitCodes: [(0, "nothing to repair"), (1, "a test could not run (a running or unreadable VM, not a VM home)"),
                    (2, "wrong usage or no test selected"), (3, "issues were found (and repaired, unless -n)")]
    )

    /// What the command line asks for (vmfix(1)).
    struct Options {
        /// The tests to run, named by their letters (b d l p s).
        var tests: Set<Character> = []
        var checkOnly: Bool
        var recursive: Bool

        init(_ args: ParsedArguments) throws {
            // In command-line order: -a and -A replace what came before them.
            for o in args.occurrences(of: "aAbdHlps") {
                switch o.letter {
                case "a": tests = ["b", "l", "p", "s"]
                case "A": tests = ["b", "d", "l", "p", "s"]
                default: tests.insert(o.letter)
                }
            }
            guard !tests.isEmpty else { throw VMToolsError.usage("no action selected: give at least one of -b -l -d -p -s -H (or -a, -A)") }
            checkOnly = args.has("n")
            recursive = args.has("r")
        }
    }

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        let options = try Options(args)
        let tests = options.tests
        Interrupt.block()
        let (global, _) = try context.loadGlobal(args)
        var fixer = Fixer(global: global, console: context.console, environment: context.environment,
                          checkOnly: options.checkOnly, recursive: options.recursive)
        var operands: [String] = []
        for operand in args.operands.isEmpty ? ["."] : args.operands {
            do {
                var path = try FileSystem.canonicalize(operand, cwd: context.cwd)
                if !FileSystem.isDirectory(path) && [global.fileNames.settings, global.fileNames.lock].contains(path.lastPathComponent) {
                    path = path.deletingLastPathComponent
                }
                guard FileSystem.isDirectory(path) else { throw VMToolsError(.failure, operand, "not a directory") }
                operands.append(path)
            } catch let e as VMToolsError {
                fixer.failed(e)
            }
        }
        // One walk serves every check; only undoing an operation (-b) can
        // change which directories and homes there are.
        var scan = DirectoryScan(operands, recursive: fixer.recursive)
        if tests.contains("b"), fixer.backups(scan) { scan = DirectoryScan(operands, recursive: fixer.recursive) }
        if tests.contains("l") {
            if fixer.locks(scan) && fixer.checkOnly {
                context.console.notice("the other checks need these locks gone, so they did not run")
                return fixer.status
            }
        }
        if tests.contains("d") { fixer.runtimeFiles(scan) }
        if tests.contains("p") || tests.contains("s") {
            // A VM whose parent is missing waits for the rest: the repair of a
            // renamed parent elsewhere in the tree may relink it meanwhile.
            var later: [String] = []
            for home in fixer.homes(scan) where !fixer.checkVM(home, links: tests.contains("p"), storage: tests.contains("s"), deferrable: true) {
                later.append(home)
            }
            for home in later { _ = fixer.checkVM(home, links: tests.contains("p"), storage: tests.contains("s"), deferrable: false) }
            fixer.locks.releaseAll()
        }
        // Never part of -a or -A: accepting is the user's decision, not a repair.
        if tests.contains("H") {
            for home in fixer.homes(scan) { fixer.acceptHostPaths(home) }
        }
        return fixer.status
    }

    struct Fixer {
        let global: GlobalConfig
        let console: Console
        let environment: [String: String]
        let checkOnly: Bool
        let recursive: Bool
        var foundIssue = false
        var internalError = false
        /// The per-VM checks' locks: shared ones under -n. Each stays held
        /// while the VMs below its directory are checked, so a VM is locked
        /// once, not again as its children's parent (Benchmarks/README.md,
        /// scale).
        let locks: LockSet
        /// Under -n, a child list read under its home's lock serves every
        /// check until that lock goes: nothing changes it meanwhile.
        var childLists: [String: (lock: HomeLock, list: ChildList)] = [:]

        init(global: GlobalConfig, console: Console, environment: [String: String], checkOnly: Bool, recursive: Bool) {
            self.global = global
            self.console = console
            self.environment = environment
            self.checkOnly = checkOnly
            self.recursive = recursive
            locks = LockSet(global: global, console: console)
            locks.readOnlyHomes = checkOnly
            locks.shared = checkOnly
        }

        var status: ExitCode { internalError ? .failure : foundIssue ? .soft : .success }

        mutating func failed(_ e: VMToolsError) {
            internalError = true
            console.error(e)
        }

        mutating func issue(_ s: String) {
            foundIssue = true
            console.warning(s)
        }

        // MARK: -b

        /// Returns whether anything was undone or removed.
        mutating func backups(_ scan: DirectoryScan) -> Bool {
            workDirectories(scan)
            var found: [String] = []
            var seen = Set<String>()
            for dir in scan.directories {
                for entry in dir.entries where entry.name.hasPrefix("vmtools-backup.") && entry.isDirectoryFollowingLinks(in: dir.path) {
                    let path = dir.path.appendingPathComponent(entry.name)
                    if seen.insert(path).inserted { found.append(path) }
                }
            }
            // Journals first: a secondary directory (another filesystem's
            // part of an operation) waits for its primary's replay.
            var stale: [(String, Transaction.Leftover)] = []
            var waiting: [String] = []
            for path in found {
                switch Transaction.inspect(backupDirectory: path) {
                case .live: console.notice("\(path): belongs to a vmtools command still running; left alone")
                case .secondary: waiting.append(path)
                case let state: stale.append((path, state))
                }
            }
            let report = stale.map(\.0) + waiting
            guard !report.isEmpty else { return false }
            issue("leftover backup directories:")
            console.items(report)
            guard !checkOnly else { return false }
            for (path, state) in stale {
                if case let .interrupted(steps) = state {
                    if let failure = Transaction.replay(steps, environment: environment) {
                        failed(VMToolsError(.failure, path, "the interrupted operation could not be undone (\(failure)); kept for another try"))
                        continue
                    }
                    console.solved("\(path): the interrupted operation was undone (\(steps.count) steps)")
                }
                FileSystem.removeTree(path)
                console.solved("\(path): removed")
            }
            for path in waiting {
                if case let .secondary(primary) = Transaction.inspect(backupDirectory: path) {
                    console.notice("\(path): part of the operation in \(primary), which is still there; run vmfix -b where that is")
                    continue
                }
                FileSystem.removeTree(path)
                console.solved("\(path): removed")
            }
            return true
        }

        // MARK: -H

        /// Prints the host paths from outside its tree each of the VM's
        /// settings files hands to the guest, and accepts them (vm.settings(5), HOST PATHS).
        mutating func acceptHostPaths(_ home: String) {
            do {
                let open = try HostPathPolicy.accept(home: home, global: global, environment: environment, dryRun: checkOnly)
                for group in open {
                    let raw = group.paths.contains(where: \.isRaw), paths = group.paths.contains { !$0.isRaw }
                    issue("\(group.file): " + [paths ? "hands the guest host paths outside the VM's tree" : nil, raw ? "passes QEMU raw syntax" : nil]
                        .compactMap { $0 }.joined(separator: " and ") + ":")
                    console.items(group.paths.map { p in
                        p.isRaw ? "\(p.setting)=\(p.path) (raw QEMU syntax: it can open host files and run host commands), from \(p.provenance)"
                            : "\(p.setting)=\(p.path)" + (p.via.map { " (the \($0))" } ?? "") + ", \(p.access.rawValue), from \(p.provenance)"
                    })
                    if !checkOnly { console.solved("\(group.file): these \(raw ? "host paths and raw QEMU values" : "host paths") are accepted") }
                }
            } catch let e as VMToolsError {
                failed(e)
            } catch {}
        }

        // MARK: -b (work directories)

        /// What a killed import or export left (`.vmtools-import.*`,
        /// `.vmtools-export.*`: an unpacked archive, half-converted disks):
        /// nothing in them is the user's, so they go whole. One still
        /// flocked belongs to a command that runs.
        mutating func workDirectories(_ scan: DirectoryScan) {
            var stale: [String] = []
            for dir in scan.directories {
                for entry in dir.entries where WorkDirectory.isWorkName(entry.name) && entry.isDirectory(in: dir.path) {
                    let path = dir.path.appendingPathComponent(entry.name)
                    if WorkDirectory.isInUse(path) {
                        console.notice("\(path): belongs to a vmtools import or export still running; left alone")
                    } else {
                        stale.append(path)
                    }
                }
            }
            guard !stale.isEmpty else { return }
            issue("leftover import and export directories:")
            console.items(stale)
            guard !checkOnly else { return }
            for path in stale {
                FileSystem.removeTree(path)
                console.solved("\(path): removed")
            }
        }

        // MARK: -l

        /// Returns whether stale locks were found.
        mutating func locks(_ scan: DirectoryScan) -> Bool {
            let name = global.fileNames.lock
            let host = FileSystem.hostName()
            var stale: [String] = []
            for entry in scan.directories where entry.has(name) {
                let dir = entry.path
                let path = dir.appendingPathComponent(name)
                guard FileSystem.isSymlink(path), let target = FileSystem.readLink(path) else { continue }
                let owner = HomeLock.Owner(linkTarget: target)
                if owner.pid != nil, owner.host == host, FileSystem.isFlocked(dir) {
                    console.notice("\(path): held by \(owner.description), which is running; left alone")
                    continue
                }
                stale.append(path)
            }
            guard !stale.isEmpty else { return false }
            issue("leftover lock files:")
            console.items(stale)
            if !checkOnly {
                for path in stale where unlink(path) == 0 || errno == ENOENT { console.solved("\(path): removed") }
            }
            return true
        }

        // MARK: -d

        mutating func runtimeFiles(_ scan: DirectoryScan) {
            let names = global.fileNames
            var found: [(String, [String])] = []
            for entry in scan.directories {
                let dir = entry.path
                // A read-only home keeps them in its run-time directory.
                let runDirectory = RuntimeDirectory.forHome(dir)
                let own = entry.entries.map(\.name).filter(names.isWork).map { dir.appendingPathComponent($0) }
                // Listed only when there (vmfix walks a large tree once: FixScaleTests).
                let run = FileSystem.lexists(runDirectory) ? names.workFiles(in: runDirectory).map { runDirectory.appendingPathComponent($0) } : []
                let files = own + run
                guard !files.isEmpty else { continue }
                if let p = RunningState.process(home: dir, global: global) {
                    console.notice("\(dir): running (pid \(p.pid)), its run-time files are in use")
                    continue
                }
                found.append((dir, files))
            }
            guard !found.isEmpty else { return }
            foundIssue = true
            console.notice("leftover run-time files:")
            console.items(found.flatMap(\.1))
            guard !checkOnly else { return }
            for (dir, files) in found {
                do {
                    let locks = LockSet(global: global, console: console)
                    locks.readOnlyHomes = true
                    try locks.lock(dir)
                    for f in files { try FileSystem.removeFile(f, sync: false) }
                    locks.releaseAll()
                    console.solved("\(dir): run-time files removed")
                } catch let e as VMToolsError {
                    failed(e)
                } catch {}
            }
        }

        // MARK: -p, -s

        /// VM homes to check, parents before children.
        mutating func homes(_ scan: DirectoryScan) -> [String] {
            var out: [String] = []
            for dir in scan.directories {
                if dir.isHome(global: global) {
                    out.append(dir.path)
                } else if !recursive {
                    failed(VMToolsError(.failure, dir.path, "not a VM home (no \(global.fileNames.settings))"))
                }
            }
            return out
        }

        /// Returns false, having done nothing, for a deferrable VM whose parent is missing.
        mutating func checkVM(_ home: String, links: Bool, storage: Bool, deferrable: Bool) -> Bool {
            // Parents come first: only the locks of directories holding this
            // one can serve again. The home itself is locked afresh, so that
            // the running check is made.
            locks.release { $0 == home || !FileSystem.isWithin(home, $0) }
            let tx = Transaction(anchor: home, environment: environment)
            do {
                try locks.lock(home, whatFor: "checked when it is stopped")
                var file = try readFile(home)
                let parentIsHome = links ? file.parent.map { VMHome.isHome($0, global: global) } : nil
                if deferrable, let parent = file.parent, parentIsHome == false,
                   (try? renamedParent(home, missing: parent)) == nil {
                    return false
                }
                if links, try checkLinks(home, file, parentIsHome: parentIsHome == true, locks, tx) { file = try readFile(home) }
                if storage {
                    try checkStorage(home, file, tx)
                    try checkFirmwareState(home, tx)
                }
                try Interrupt.check()
                tx.commit()
            } catch let e as VMToolsError {
                tx.rollback()
                failed(e)
            } catch {
                tx.rollback()
            }
            return true
        }


        func readFile(_ home: String) throws -> VMSettingsFile { try VMSettingsFile.read(global.settingsPath(in: home)) }

        mutating func childList(_ home: String, lock: HomeLock) throws -> ChildList {
            guard checkOnly else { return try ChildList.read(home: home, global: global) }
            if let c = childLists[home], c.lock === lock, lock.isHeld { return c.list }
            let list = try ChildList.read(home: home, global: global)
            childLists[home] = (lock, list)
            return list
        }

        /// Returns whether it changed the settings of `home`.
        mutating func checkLinks(_ home: String, _ file: VMSettingsFile, parentIsHome: Bool, _ locks: LockSet, _ tx: Transaction) throws -> Bool {
            let relink = Relinker(global: global, tx: tx, environment: environment)
            var changed = false
            // 1. Our parent must list us.
            if let parent = file.parent {
                if parentIsHome {
                    let parentLock = try locks.lock(parent, allowRunning: true)
                    if try !childList(parent, lock: parentLock).children.contains(home) {
                        issue("\(home): child link missing in its parent \(parent)")
                        if !checkOnly {
                            try relink.updateChildList(in: parent, remove: nil, add: home)
                            console.solved("\(parent): lists \(home) again")
                        }
                    }
                } else if let (newParent, oldEntry) = try renamedParent(home, missing: parent) {
                    // The parent's directory was renamed and this VM moved with it.
                    issue("\(home): parent link invalid: \(parent) (now \(newParent))")
                    if !checkOnly {
                        try locks.lock(newParent, allowRunning: true)
                        try relinkChild(home, to: newParent, from: parent, tx)
                        changed = true
                        try relink.updateChildList(in: newParent, remove: oldEntry, add: home)
                        console.solved("\(home): parent path updated to \(newParent)")
                    }
                } else {
                    issue("\(home): its parent \(parent) is missing")
                    failed(VMToolsError(.failure, home, "cannot repair: its parent \(parent) is gone; run 'vmfix -rp' from a directory that holds the whole tree"))
                }
            }
            // 2. Every child listed must exist and point back.
            let list = try childList(home, lock: locks.lock(home))
            for child in list.children {
                try Interrupt.check()
                if VMHome.isHome(child, global: global) {
                    let recorded = try readFile(child).parent
                    guard recorded != home else { continue }
                    issue("\(child): " + (recorded.map { "parent link invalid: \($0)" } ?? "parent link missing") + " (listed by \(home))")
                    if !checkOnly {
                        try locks.lock(child, whatFor: "its settings must change")
                        try relinkChild(child, to: home, from: recorded, tx)
                        console.solved("\(child): parent path updated to \(home)")
                    }
                    continue
                }
                issue("\(home): lists the missing child \(child)")
                guard !checkOnly else { continue }
                let candidate = home.appendingPathComponent(child.lastPathComponent)
                if VMHome.isHome(candidate, global: global), !list.children.contains(candidate),
                   try readFile(candidate).parent == child.deletingLastPathComponent {
                    try locks.lock(candidate, whatFor: "its settings must change")
                    try relink.updateChildList(in: home, remove: child, add: candidate)
                    console.solved("\(home): child location updated to \(candidate)")
                    try relinkChild(candidate, to: home, from: child.deletingLastPathComponent, tx)
                    console.solved("\(candidate): parent path updated to \(home)")
                } else {
                    try relink.updateChildList(in: home, remove: child, add: nil)
                    console.solved("\(home): child \(child) unregistered")
                }
            }
            return changed
        }

        /// A missing parent P of `home`: when the directory holding `home` is
        /// a VM that lists `P/<basename of home>`, P was renamed to it.
        func renamedParent(_ home: String, missing parent: String) throws -> (String, String)? {
            let holder = home.deletingLastPathComponent
            guard VMHome.isHome(holder, global: global) else { return nil }
            let old = parent.appendingPathComponent(home.lastPathComponent)
            return try ChildList.read(home: holder, global: global).children.contains(old) ? (holder, old) : nil
        }

        /// Points a child at its (moved) parent: the parent line, and the
        /// disks that moved with the parent's directory (vmfix(1) -p): the
        /// child's own storage paths when it lived inside it, and the
        /// backing files of its overlays that still name the old place.
        func relinkChild(_ child: String, to parent: String, from old: String?, _ tx: Transaction) throws {
            var patch = SettingsPatch()
            patch.parent = .some(parent)
            let t = old.map { PathTranslation(from: $0, to: parent) }
            for (name, value) in try readFile(child).assignments where SettingName.isStorageBackend(name) && !value.isEmpty {
                let b = StorageBackend(value)
                guard !b.isRemote, !b.location.isEmpty else { continue }
                var image = b.path(home: child, environment: environment)
                if !FileSystem.isReadable(image), let t, t.applies(to: image), FileSystem.isReadable(t(image)) {
                    image = t(image)
                    if b.location.hasPrefix("/") { patch.values[name] = (b.prefix.map { $0 + ":" } ?? "") + image }
                    console.solved("\(child): \(name) now \(image)")
                }
                guard FileSystem.isRegularFile(image), let backing = try? QemuImg.backing(of: image, environment: environment),
                      !FileSystem.isReadable(backing.path) else { continue }
                var moved = parent.appendingPathComponent(backing.path.lastPathComponent)
                if let t, t.applies(to: backing.path), FileSystem.isReadable(t(backing.path)) { moved = t(backing.path) }
                guard FileSystem.isReadable(moved) else { continue }
                try tx.rebase(image, onto: moved, current: backing)
                console.solved("\(image): backing file now \(moved)")
            }
            try patch.write(to: child, global: global, tx)
        }

        mutating func checkStorage(_ home: String, _ file: VMSettingsFile, _ tx: Transaction) throws {
            var fixed: [String: String] = [:]
            for (name, value) in file.assignments where SettingName.isStorageBackend(name) && !value.isEmpty {
                try Interrupt.check()
                let b = StorageBackend(value)
                guard !b.isRemote, !b.location.isEmpty else { continue }
                var image = b.path(home: home, environment: environment)
                if !FileSystem.isReadable(image) {
                    issue("\(home): \(name): the image \(image) is missing")
                    let local = home.appendingPathComponent(image.lastPathComponent)
                    guard !checkOnly, FileSystem.isReadable(local) else { continue }
                    fixed[name] = (b.prefix.map { $0 + ":" } ?? "") + local
                    console.solved("\(home): \(name) now \(local)")
                    image = local
                }
                guard let backing = try? QemuImg.backing(of: image, environment: environment),
                      !FileSystem.isReadable(backing.path) else { continue }
                issue("\(home): the backing file \(backing.path) of \(image) is missing")
                guard !checkOnly, let parent = file.parent else { continue }
                let candidate = parent.appendingPathComponent(backing.path.lastPathComponent)
                guard FileSystem.isReadable(candidate) else { continue }
                try tx.rebase(image, onto: candidate, current: backing)
                console.solved("\(image): backing file now \(candidate)")
            }
            guard !fixed.isEmpty else { return }
            var patch = SettingsPatch()
            patch.values = fixed
            try patch.write(to: home, global: global, tx)
            console.info("\(home): settings updated")
        }
    }
}
