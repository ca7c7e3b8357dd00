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
        synopsis: ["[-hjqrv] [-n | [-o fields] [-s keys] [-w [seconds]]] [-a]",
                   "[-hjqrv] [-n | [-o fields] [-s keys] [-w [seconds]]] -d vmhome ...",
                   "[-hjqrv] [-n | [-o fields] [-s keys] [-w [seconds]]] -p pid ...",
                   "[-hjqrv] [-n | [-o fields] [-s keys] [-w [seconds]]] -u user ..."],
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
            OptionSpec("w", optionalNumber: "seconds", "watch: refresh every so many seconds, 2 if not given (JSON lines outside a terminal)"),
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
        /// Measured over a sampling interval (vmps(1) RATES): asking for it costs the interval.
        var rate = false
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
        // Read from QEMU's argv, where the firmware module names it: no settings, no descriptors.
        Field(letter: "b", header: "FIRMWARE", jsonKey: "firmware", text: { p, _ in FirmwareModule.firmware(argv: p.argv) }),
        Field(letter: "c", header: "CPU %", jsonKey: "cpu_percent", numeric: true,
              text: { p, _ in Formatting.twoDecimals(p.cpuPercent) }, json: { .number(($0.cpuPercent * 100).rounded() / 100) }),
        Field(letter: "d", header: "DISPLAY", jsonKey: "display", text: { p, pidName in p.liveDisplay(home: p.home(pidFile: pidName)) }),
        Field(letter: "e", header: "COMMAND-LINE", jsonKey: "argv",
              text: { p, _ in p.argv.map(shellQuote).joined(separator: " ") }, json: { .array($0.argv.map { .string($0) }) }),
        Field(letter: "f", header: "FORWARDS", jsonKey: "forwards", text: forwardsText,
              liveJSON: { p, pidName in p.liveForwards(home: p.home(pidFile: pidName)).map { .array($0.map(\.json)) } ?? .null }),
        Field(letter: "g", header: "RAM MB", jsonKey: "ram_mb", numeric: true,
              text: { p, _ in p.ramMB.map(String.init) ?? "-" }, json: { p in p.ramMB.map { .number(Double($0)) } ?? .null }),
        Field(letter: "h", header: "HOME", jsonKey: "home", text: { p, pidName in p.home(pidFile: pidName) ?? "" }),
        Field(letter: "i", header: "DISK RD KB/S", jsonKey: "disk_read_bytes_per_second", numeric: true, rate: true,
              text: { p, _ in LiveFigures.kbText(p.rates?.diskRead) }, json: { LiveFigures.rateJSON($0.rates?.diskRead) }),
        Field(letter: "l", header: "CPU NOW %", jsonKey: "cpu_now_percent", numeric: true, rate: true,
              text: { p, _ in p.rates?.cpuPercent.map(Formatting.twoDecimals) ?? "-" },
              json: { p in p.rates?.cpuPercent.map { .number(($0 * 100).rounded() / 100) } ?? .null }),
        Field(letter: "m", header: "MEM KB", jsonKey: "memory_kb", numeric: true,
              text: { p, _ in String(p.vszKB) }, json: { .number(Double($0.vszKB)) }),
        Field(letter: "n", header: "NAME", jsonKey: "name", text: { p, _ in p.name ?? "" }),
        Field(letter: "o", header: "DISK WR KB/S", jsonKey: "disk_write_bytes_per_second", numeric: true, rate: true,
              text: { p, _ in LiveFigures.kbText(p.rates?.diskWrite) }, json: { LiveFigures.rateJSON($0.rates?.diskWrite) }),
        Field(letter: "p", header: "PID", jsonKey: "pid", text: { p, _ in String(p.pid) }, json: { .number(Double($0.pid)) }),
        Field(letter: "q", header: "QMP SOCKET", jsonKey: "monitor",
              text: { p, pidName in p.monitorSocket(home: p.home(pidFile: pidName)) ?? "" }),
        Field(letter: "r", header: "NET RX KB/S", jsonKey: "net_rx_bytes_per_second", numeric: true, rate: true,
              text: { p, _ in LiveFigures.kbText(p.rates?.netRx) }, json: { LiveFigures.rateJSON($0.rates?.netRx) }),
        Field(letter: "s", header: "NET TX KB/S", jsonKey: "net_tx_bytes_per_second", numeric: true, rate: true,
              text: { p, _ in LiveFigures.kbText(p.rates?.netTx) }, json: { LiveFigures.rateJSON($0.rates?.netTx) }),
        Field(letter: "t", header: "UPTIME", jsonKey: "uptime_seconds", numeric: true,
              text: { p, _ in String(QemuProcess.count(p.uptime)) }, json: { .number(Double(QemuProcess.count($0.uptime))) }),
        Field(letter: "u", header: "USER", jsonKey: "user", text: { p, _ in p.user }),
        Field(letter: "v", header: "VCPUS", jsonKey: "vcpus", numeric: true,
              text: { p, _ in p.vcpus.map(String.init) ?? "-" }, json: { p in p.vcpus.map { .number(Double($0)) } ?? .null }),
        // Asked only for -j or -o w, of all VMs at once: silent agents cost up to a second (vmps(1)).
        Field(letter: "w", header: "GUEST ADDRESSES", jsonKey: "guest_addresses", text: { p, pidName in p.guestAgent(home: p.home(pidFile: pidName)).addressesText },
              liveJSON: { p, pidName in p.guestAgent(home: p.home(pidFile: pidName)).addressesJSON }),
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
        /// `-w`: seconds between refreshes.
        var watch: Double?
        /// `-w` without a number (vmps(1) WATCH MODE), as watch(1).
        static let defaultWatchInterval = 2.0

        init(_ args: ParsedArguments) throws {
            let selections = "adpu".filter { args.has($0) }
            if selections.count > 1 { throw VMToolsError.usage("-a, -d, -p and -u cannot be combined") }
            if args.count("o") > 1 || args.count("s") > 1 { throw VMToolsError.usage("-o and -s may each be given once") }
            quiet = args.has("n")
            let fieldText = args.last("o"), keyText = args.last("s")
            if quiet && (fieldText != nil || keyText != nil || args.has("w")) {
                throw VMToolsError.usage("-n cannot be combined with -o, -s or -w")
            }
            if args.count("w") > 1 { throw VMToolsError.usage("-w may be given once") }
            if let w = args.last("w") {
                guard let seconds = Double(w), seconds.isFinite, seconds >= 0.1, seconds <= 86400 else {
                    throw VMToolsError.usage("-w \(w): the interval is a number of seconds from 0.1 to 86400")
                }
                watch = seconds
            } else if args.has("w") {
                watch = Self.defaultWatchInterval
            }
            let fieldLetters = Array(fieldText ?? (watch == nil ? "pnd" : "pnlvgxiorst"))
            let keys = Array(keyText ?? (watch == nil ? "" : "L"))
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
                if let first = args.operands.first {
                    // `vmps -w x`: a word after a bare -w is an operand; say why.
                    let hint = args.has("w") && args.last("w") == nil ? " (-w \(first): the interval is a number of seconds)" : ""
                    throw VMToolsError.usage("too many parameters" + hint)
                }
            } else if args.operands.isEmpty {
                throw VMToolsError.usage("-\(selection!.rawValue) needs at least one operand")
            }
            json = args.has("j")
            raw = args.has("r")
        }

        /// Whether a rate is asked for: a shown field or a sort key; with
        /// `-j`, any rate letter in `-o` adds every rate key.
        var wantsRates: Bool { watch != nil || fields.contains(where: \.rate) || sortKeys.contains(where: \.field.rate) }

        /// Whether any of these fields is shown or sorted on.
        func asks(_ letters: String) -> Bool {
            fields.contains { letters.contains($0.letter) } || sortKeys.contains { letters.contains($0.field.letter) }
        }
    }

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        let options = try Options(args)
        let (global, _) = try context.loadGlobal(args)
        let pidName = global.fileNames.pid
        var (rows, failed) = try select(options, args.operands, context, global, report: true)
        if options.quiet { return failed ?? (rows.isEmpty ? .soft : .success) }
        if let interval = options.watch {
            return try VMPsWatch(options: options, pidName: pidName, interval: interval, context: context) {
                (try? select(options, args.operands, context, global, report: false).rows) ?? []
            }.run()
        }
        if rows.isEmpty {
            if options.json { context.console.print("[]") }
            return failed ?? .soft
        }
        if options.wantsRates {
            // QMP round trips only for the disk fields (or JSON, which has every rate key).
            rows = LiveFigures.sample(rows, pidName: pidName, disk: options.json || options.asks("io"),
                                      net: options.json || options.asks("rs"))
        }
        if options.json || options.asks("w") { rows = askingGuestAgents(rows, pidName) }
        rows = sorted(rows, options.sortKeys, pidName)
        let console = context.console
        if report(badAnswers: rows, pidName, console) { failed = .failure }
        if options.json {
            console.printJSON(.array(rows.map { document($0, pidName, rates: options.wantsRates) }))
            return failed ?? .success
        }
        table(rows, options, pidName, header: !options.raw).forEach { console.print($0) }
        return failed ?? .success
    }

    /// The VMs the options select; an operand that names no VM home is
    /// reported (once, with `report`) and makes the status 1.
    static func select(_ options: Options, _ operands: [String], _ context: Context, _ global: GlobalConfig,
                       report: Bool) throws -> (rows: [QemuProcess], failed: ExitCode?) {
        var rows: [QemuProcess] = []
        var failed: ExitCode?
        switch options.selection {
        case nil: rows = QemuProcess.all().filter { $0.uid == geteuid() }
        case .all?: rows = QemuProcess.all()
        case .homes?:
            for operand in operands {
                // A stopped VM is quietly not listed; a path that is not there is a mistake to name (vmps(1)).
                do {
                    let home = try FileSystem.canonicalize(operand, cwd: context.cwd)
                    guard FileSystem.exists(home) else { throw VMToolsError(.failure, operand, "no such file or directory") }
                    if let p = RunningState.process(home: home, global: global) { rows.append(p) }
                } catch let e as VMToolsError {
                    if report { context.console.error(e) }
                    failed = .failure
                }
            }
        case .pids?:
            let all = QemuProcess.all()
            for operand in operands {
                guard let pid = Int32(operand), pid > 0 else {
                    throw VMToolsError(.failure, operand, "not a process id")
                }
                rows += all.filter { $0.pid == pid }
            }
        case .users?:
            let all = QemuProcess.all()
            for operand in operands {
                let uid: UInt32? = UInt32(operand) ?? getpwnam(operand).map { $0.pointee.pw_uid }
                guard let uid else { throw VMToolsError(.failure, operand, "no such user") }
                rows += all.filter { $0.uid == uid }
            }
        }
        return (rows, failed)
    }

    /// One line per unusable answer of a VM's guest agent or QMP monitor,
    /// naming the VM (vmps(1) EXIT STATUS); true when there was one.
    /// `reported` keeps a watch from repeating a line every refresh.
    static func report(badAnswers rows: [QemuProcess], _ pidName: String, _ console: Console,
                       reported: inout Set<String>) -> Bool {
        var any = false
        for p in rows {
            for bad in p.badAnswers {
                any = true
                let subject = p.home(pidFile: pidName) ?? "pid \(p.pid)"
                let e = VMToolsError(.failure, subject, bad.description)
                if reported.insert("\(p.pid) \(e)").inserted { console.error(e) }
            }
        }
        return any
    }

    static func report(badAnswers rows: [QemuProcess], _ pidName: String, _ console: Console) -> Bool {
        var reported: Set<String> = []
        return report(badAnswers: rows, pidName, console, reported: &reported)
    }

    /// Every VM's guest agent asked at once: silent agents cost a second in all (vmps(1)).
    static func askingGuestAgents(_ rows: [QemuProcess], _ pidName: String) -> [QemuProcess] {
        QemuProcess.askingGuestAgents(rows, homes: rows.map { $0.home(pidFile: pidName) })
    }

    static func sorted(_ rows: [QemuProcess], _ keys: [(field: Field, descending: Bool)], _ pidName: String) -> [QemuProcess] {
        var rows = rows
        for (f, descending) in keys.reversed() {
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
        return rows
    }

    /// One VM's JSON object: every field (the rate fields only when sampled).
    static func document(_ p: QemuProcess, _ pidName: String, rates: Bool) -> JSON {
        .object(fields.filter { rates || !$0.rate }.map { f in (f.jsonKey, jsonValue(f, p, pidName)) })
    }

    /// The table's lines, unescaped (Console.print escapes them).
    static func table(_ rows: [QemuProcess], _ options: Options, _ pidName: String, header: Bool) -> [String] {
        var table: [[String]] = header ? [options.fields.map(\.header)] : []
        for p in rows {
            table.append(options.fields.map { f in
                let v = f.text(p, pidName)
                return v.isEmpty ? " " : v
            })
        }
        return Formatting.table(table)
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
