import VMToolsCore
import VMToolsLaunch

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
            OptionSpec("s", "storage paths, backing files and the users of cached images"),
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
                    try checkSnapshots(home, file, tx)
                    try checkImageUser(home, file)
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
    }
}
