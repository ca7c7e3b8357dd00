#if canImport(Glibc)
import Glibc
#endif

/// `vmps`: list running VMs (commands.md §4), from /proc, with a JSON form.
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

    static let letters = "acdehmnpqtux"

    static let headers: [Character: String] = [
        "a": "ACCEL", "c": "CPU %", "d": "DISPLAY", "e": "COMMAND-LINE", "h": "HOME", "m": "MEM KB", "n": "NAME",
        "p": "PID", "q": "QMP SOCKET", "t": "UPTIME", "u": "USER", "x": "RSS KB",
    ]

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        let selections = "adpu".filter { args.has($0) }
        if selections.count > 1 { throw VMToolsError.usage("-a, -d, -p and -u cannot be combined") }
        if args.count("o") > 1 || args.count("s") > 1 { throw VMToolsError.usage("-o and -s may each be given once") }
        if args.has("n") && (args.has("o") || args.has("s")) { throw VMToolsError.usage("-n cannot be combined with -o or -s") }
        let fields = Array(args.last("o") ?? "pnd")
        let keys = Array(args.last("s") ?? "")
        guard !fields.isEmpty, fields.allSatisfy({ letters.contains($0) }) else {
            throw VMToolsError.usage("-o \(String(fields)): fields are letters of \(letters)")
        }
        guard keys.allSatisfy({ letters.contains(Character($0.lowercased())) }) else {
            throw VMToolsError.usage("-s \(String(keys)): sort keys are letters of \(letters), uppercase for descending")
        }
        let selection = selections.first
        if selection == nil || selection == "a" {
            if !args.operands.isEmpty { throw VMToolsError.usage("too many parameters") }
        } else if args.operands.isEmpty {
            throw VMToolsError.usage("-\(selection!) needs at least one operand")
        }
        let (global, _) = try context.loadGlobal(args)
        let pidName = global.file("cfg_file_pid")
        let all = QemuProcess.all()
        var rows: [QemuProcess] = []
        var failed: ExitCode?
        switch selection {
        case nil: rows = all.filter { $0.uid == geteuid() }
        case "a": rows = all
        case "d":
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
        case "p":
            for operand in args.operands {
                guard let pid = Int32(operand), pid > 0 else {
                    throw VMToolsError(.failure, operand, "not a process id")
                }
                rows += all.filter { $0.pid == pid }
            }
        default:
            for operand in args.operands {
                let uid: UInt32? = UInt32(operand) ?? getpwnam(operand).map { $0.pointee.pw_uid }
                guard let uid else { throw VMToolsError(.failure, operand, "no such user") }
                rows += all.filter { $0.uid == uid }
            }
        }
        if args.has("n") { return failed ?? (rows.isEmpty ? .soft : .success) }
        if rows.isEmpty {
            if args.has("j") { context.console.print("[]") }
            return failed ?? .soft
        }
        for key in keys.reversed() {
            let f = Character(key.lowercased())
            let descending = key.isUppercase
            // Once per row: a display may be asked over QMP.
            let values = Dictionary(rows.map { ($0.pid, value(f, $0, pidName)) }, uniquingKeysWith: { a, _ in a })
            rows = stableSorted(rows) { a, b in
                let (x, y) = (values[a.pid] ?? "", values[b.pid] ?? "")
                let less: Bool
                if "cmpxt".contains(f) { less = (Double(x) ?? 0) < (Double(y) ?? 0) } else { less = bytewiseLess(x, y) }
                let greater: Bool
                if "cmpxt".contains(f) { greater = (Double(x) ?? 0) > (Double(y) ?? 0) } else { greater = bytewiseLess(y, x) }
                return descending ? greater : less
            }
        }
        let console = context.console
        if args.has("j") {
            let docs: [JSON] = rows.map { p in
                .object(headers.keys.sorted().map { f in (jsonKey(f), jsonValue(f, p, pidName)) })
            }
            console.printJSON(.array(docs))
            return failed ?? .success
        }
        var table: [[String]] = args.has("r") ? [] : [fields.map { headers[$0]! }]
        for p in rows {
            table.append(fields.map { f in
                let v = value(f, p, pidName)
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

    static func value(_ f: Character, _ p: QemuProcess, _ pidName: String) -> String {
        let home = p.home(pidFile: pidName)
        switch f {
        case "a": return p.accelerator
        case "c": return Formatting.twoDecimals(p.cpuPercent)
        case "d": return p.liveDisplay(home: home)
        case "e": return p.argv.map(shellQuote).joined(separator: " ")
        case "h": return home ?? ""
        case "m": return String(p.vszKB)
        case "n": return p.name ?? ""
        case "p": return String(p.pid)
        case "q": return p.monitorSocket(home: home) ?? ""
        case "t": return String(Int(p.uptime))
        case "u": return p.user
        default: return String(p.rssKB)
        }
    }

    static func jsonKey(_ f: Character) -> String {
        ["a": "accelerator", "c": "cpu_percent", "d": "display", "e": "argv", "h": "home", "m": "memory_kb", "n": "name",
         "p": "pid", "q": "monitor", "t": "uptime_seconds", "u": "user", "x": "rss_kb"][f]!
    }

    static func jsonValue(_ f: Character, _ p: QemuProcess, _ pidName: String) -> JSON {
        switch f {
        case "c": return .number((p.cpuPercent * 100).rounded() / 100)
        case "e": return .array(p.argv.map { .string($0) })
        case "m": return .number(Double(p.vszKB))
        case "p": return .number(Double(p.pid))
        case "t": return .number(Double(Int(p.uptime)))
        case "x": return .number(Double(p.rssKB))
        default:
            let v = value(f, p, pidName)
            return v.isEmpty ? .null : .string(v)
        }
    }
}
