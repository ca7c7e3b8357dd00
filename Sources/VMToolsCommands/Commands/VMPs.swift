import VMToolsCore
import VMToolsQEMU
import VMToolsLaunch

#if canImport(Glibc)
import Glibc
#endif

/// `vmps`: list running VMs (vmps(1)), from /proc, with a JSON form.
/// Sees VMs the original tool started too (same command-line anchors).
public enum VMPsCommand: Command {
    public static let spec = CommandSpec(
        name: "vmps",
        summary: "list running virtual machines",
        synopsis: ["[-hjqrv] [-n | [-o fields] [-s keys]] [-a]", "[-hjqrv] [-n | [-o fields] [-s keys]] -d vmhome ...",
                   "[-hjqrv] [-n | [-o fields] [-s keys]] -p pid ...", "[-hjqrv] [-n | [-o fields] [-s keys]] -u user ..."],
        options: [
            OptionSpec("a", "VMs of every user"),
            OptionSpec("d", "operands are VM homes"),
            OptionSpec("j", "print JSON: one object per VM with every field"),
            OptionSpec("n", "print nothing; exit 0 if a selected VM runs, 3 otherwise"),
            OptionSpec("o", "fields", "fields to show, letters of \(letters) (default pnd)"),
            OptionSpec("p", "operands are process ids"),
            OptionSpec("r", "raw: no header line"),
            OptionSpec("s", "keys", "sort keys, letters of \(letters) (uppercase: descending)"),
            OptionSpec("u", "operands are user names or ids"),
        ],
        operands: "",
        operandCompletion: .none,
        exitCodes: [(0, "at least one VM listed"), (1, "an error occurred"), (2, "wrong usage"), (3, "nothing to list")]
    )

    /// One column of the listing: its `-o`/`-s` letter, header, JSON key and value.
    struct Field: Sendable {
        var letter: Character
        var header: String
        var jsonKey: String
        /// Sorted as numbers rather than bytewise.
        var numeric = false
        var text: @Sendable (QemuProcess, _ pidName: String) -> String
        /// The JSON value when it is not the text (a number, an array); nil for the text, or null when empty.
        var json: (@Sendable (QemuProcess) -> JSON)? = nil
        /// Same, for a value asked from the VM (its sockets are in its home).
        var liveJSON: (@Sendable (QemuProcess, _ pidName: String) -> JSON)? = nil
    }

    /// `tcp:127.0.0.1:34313->22 …`, asked over QMP; `?` when QEMU does not answer.
    static func forwardsText(_ p: QemuProcess, _ pidName: String) -> String {
        guard let list = p.liveForwards(home: p.home(pidFile: pidName)) else { return "?" }
        return list.map(\.description).joined(separator: " ")
    }

    /// Every field, in letter order (the order of the JSON keys).
    static let fields: [Field] = [
        Field(letter: "a", header: "ACCEL", jsonKey: "accelerator", text: { p, _ in p.accelerator }),
        Field(letter: "c", header: "CPU %", jsonKey: "cpu_percent", numeric: true,
              text: { p, _ in Formatting.twoDecimals(p.cpuPercent) }, json: { .number(($0.cpuPercent * 100).rounded() / 100) }),
        Field(letter: "d", header: "DISPLAY", jsonKey: "display", text: { p, pidName in p.liveDisplay(home: p.home(pidFile: pidName)) }),
        Field(letter: "e", header: "COMMAND-LINE", jsonKey: "argv",
              text: { p, _ in p.argv.map(shellQuote).joined(separator: " ") }, json: { .array($0.argv.map { .string($0) }) }),
        Field(letter: "f", header: "FORWARDS", jsonKey: "forwards", text: forwardsText,
              liveJSON: { p, pidName in p.liveForwards(home: p.home(pidFile: pidName)).map { .array($0.map(\.json)) } ?? .null }),
        // Asked only for -j or -o g: a guest without an agent costs up to a second (vmps(1)).
        Field(letter: "g", header: "GUEST ADDRESSES", jsonKey: "guest_addresses", text: { p, pidName in p.guestAgent(home: p.home(pidFile: pidName)).addressesText },
              liveJSON: { p, pidName in p.guestAgent(home: p.home(pidFile: pidName)).addressesJSON }),
        Field(letter: "h", header: "HOME", jsonKey: "home", text: { p, pidName in p.home(pidFile: pidName) ?? "" }),
        Field(letter: "m", header: "MEM KB", jsonKey: "memory_kb", numeric: true,
              text: { p, _ in String(p.vszKB) }, json: { .number(Double($0.vszKB)) }),
        Field(letter: "n", header: "NAME", jsonKey: "name", text: { p, _ in p.name ?? "" }),
        Field(letter: "p", header: "PID", jsonKey: "pid", text: { p, _ in String(p.pid) }, json: { .number(Double($0.pid)) }),
        Field(letter: "q", header: "QMP SOCKET", jsonKey: "monitor",
              text: { p, pidName in p.monitorSocket(home: p.home(pidFile: pidName)) ?? "" }),
        Field(letter: "t", header: "UPTIME", jsonKey: "uptime_seconds", numeric: true,
              text: { p, _ in String(Int(p.uptime)) }, json: { .number(Double(Int($0.uptime))) }),
        Field(letter: "u", header: "USER", jsonKey: "user", text: { p, _ in p.user }),
        Field(letter: "x", header: "RSS KB", jsonKey: "rss_kb", numeric: true,
              text: { p, _ in String(p.rssKB) }, json: { .number(Double($0.rssKB)) }),
    ]

    static let letters = String(fields.map(\.letter))

    static func field(_ letter: Character) -> Field? { fields.first { $0.letter == letter } }

    /// What the command line asks for (vmps(1)).
    struct Options {
        enum Selection: Character { case all = "a", homes = "d", pids = "p", users = "u" }

        /// nil: this user's VMs.
        var selection: Selection?
        var json: Bool
        /// `-n`: only the exit status.
        var quiet: Bool
        var raw: Bool
        var fields: [Field]
        var sortKeys: [(field: Field, descending: Bool)]

        init(_ args: ParsedArguments) throws {
            let selections = "adpu".filter { args.has($0) }
            if selections.count > 1 { throw VMToolsError.usage("-a, -d, -p and -u cannot be combined") }
            if args.count("o") > 1 || args.count("s") > 1 { throw VMToolsError.usage("-o and -s may each be given once") }
            quiet = args.has("n")
            let fieldText = args.last("o"), keyText = args.last("s")
            if quiet && (fieldText != nil || keyText != nil) { throw VMToolsError.usage("-n cannot be combined with -o or -s") }
            let fieldLetters = Array(fieldText ?? "pnd")
            let keys = Array(keyText ?? "")
            guard !fieldLetters.isEmpty, fieldLetters.allSatisfy({ letters.contains($0) }) else {
                throw VMToolsError.usage("-o \(String(fieldLetters)): fields are letters of \(letters)")
            }
            guard keys.allSatisfy({ letters.contains(Character($0.lowercased())) }) else {
                throw VMToolsError.usage("-s \(String(keys)): sort keys are letters of \(letters), uppercase for descending")
            }
            fields = fieldLetters.compactMap(field)
            sortKeys = keys.compactMap { k in field(Character(k.lowercased())).map { ($0, k.isUppercase) } }
            selection = selections.first.flatMap(Selection.init(rawValue:))
            if selection == nil || selection == .all {
                if !args.operands.isEmpty { throw VMToolsError.usage("too many parameters") }
            } else if args.operands.isEmpty {
                throw VMToolsError.usage("-\(selection!.rawValue) needs at least one operand")
            }
            json = args.has("j")
            raw = args.has("r")
        }
    }

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        let options = try Options(args)
        let (global, _) = try context.loadGlobal(args)
        let pidName = global.fileNames.pid
        let all = QemuProcess.all()
        var rows: [QemuProcess] = []
        var failed: ExitCode?
        switch options.selection {
        case nil: rows = all.filter { $0.uid == geteuid() }
        case .all?: rows = all
        case .homes?:
            for operand in args.operands {
                // A stopped VM is quietly not listed; a path that is not there is a mistake to name (vmps(1)).
                do {
                    let home = try FileSystem.canonicalize(operand, cwd: context.cwd)
                    guard FileSystem.exists(home) else { throw VMToolsError(.failure, operand, "no such file or directory") }
                    if let p = RunningState.process(home: home, global: global) { rows.append(p) }
                } catch let e as VMToolsError {
                    context.console.error(e)
                    failed = .failure
                }
            }
        case .pids?:
            for operand in args.operands {
                guard let pid = Int32(operand), pid > 0 else {
                    throw VMToolsError(.failure, operand, "not a process id")
                }
                rows += all.filter { $0.pid == pid }
            }
        case .users?:
            for operand in args.operands {
                let uid: UInt32? = UInt32(operand) ?? getpwnam(operand).map { $0.pointee.pw_uid }
                guard let uid else { throw VMToolsError(.failure, operand, "no such user") }
                rows += all.filter { $0.uid == uid }
            }
        }
        if options.quiet { return failed ?? (rows.isEmpty ? .soft : .success) }
        if rows.isEmpty {
            if options.json { context.console.print("[]") }
            return failed ?? .soft
        }
        for (f, descending) in options.sortKeys.reversed() {
            // Once per row: a display may be asked over QMP.
            let values = Dictionary(rows.map { ($0.pid, f.text($0, pidName)) }, uniquingKeysWith: { a, _ in a })
            rows = stableSorted(rows) { a, b in
                let (x, y) = (values[a.pid] ?? "", values[b.pid] ?? "")
                let less: Bool
                if f.numeric { less = (Double(x) ?? 0) < (Double(y) ?? 0) } else { less = bytewiseLess(x, y) }
                let greater: Bool
                if f.numeric { greater = (Double(x) ?? 0) > (Double(y) ?? 0) } else { greater = bytewiseLess(y, x) }
                return descending ? greater : less
            }
        }
        let console = context.console
        if options.json {
            // The firmware is read from QEMU's argv, where the firmware module names it.
            let docs: [JSON] = rows.map { p in
                .object(fields.map { f in (f.jsonKey, jsonValue(f, p, pidName)) } + [("firmware", .string(FirmwareModule.firmware(argv: p.argv)))])
            }
            console.printJSON(.array(docs))
            return failed ?? .success
        }
        var table: [[String]] = options.raw ? [] : [options.fields.map(\.header)]
        for p in rows {
            table.append(options.fields.map { f in
                let v = f.text(p, pidName)
                return v.isEmpty ? " " : v
            })
        }
        Formatting.table(table).forEach { console.print($0) }
        return failed ?? .success
    }

    static func stableSorted(_ rows: [QemuProcess], by less: (QemuProcess, QemuProcess) -> Bool) -> [QemuProcess] {
        rows.enumerated().sorted { a, b in
            less(a.element, b.element) || (!less(b.element, a.element) && a.offset < b.offset)
        }.map(\.element)
    }

    static func jsonValue(_ f: Field, _ p: QemuProcess, _ pidName: String) -> JSON {
        if let json = f.json { return json(p) }
        if let json = f.liveJSON { return json(p, pidName) }
        let v = f.text(p, pidName)
        return v.isEmpty ? .null : .string(v)
    }
}
