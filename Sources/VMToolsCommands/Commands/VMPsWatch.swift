import VMToolsCore
import VMToolsQEMU

#if canImport(Glibc)
import Glibc
#endif

/// Written by the SIGINT/SIGTERM handler: a C handler captures nothing, and
/// a pipe wakes the wait in `poll` (the self-pipe trick).
nonisolated(unsafe) private var watchSignalPipe: Int32 = -1

/// `vmps -w SECONDS` (vmps(1) WATCH MODE): in a terminal a view redrawn in
/// place until `q`, Ctrl-C or SIGTERM; otherwise one JSON line per VM per
/// interval until SIGINT, SIGTERM or a closed output.
struct VMPsWatch {
    typealias Options = VMPsCommand.Options
    var options: Options
    var pidName: String
    var interval: Double
    var context: Context
    var select: () -> [QemuProcess]

    init(options: Options, pidName: String, interval: Double, context: Context, select: @escaping () -> [QemuProcess]) {
        self.options = options
        self.pidName = pidName
        self.interval = interval
        self.context = context
        self.select = select
    }

    static let enterScreen = "\u{1B}[?1049h\u{1B}[?25l"
    static let clearScreen = "\u{1B}[H\u{1B}[2J"
    /// Cursor shown, alternate screen left: what the test looks for last.
    static let leaveScreen = "\u{1B}[?25h\u{1B}[?1049l"

    func run() throws -> ExitCode {
        let out = context.console.out
        let screen = out.isTerminal && !options.json
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw VMToolsError(.failure, nil, "cannot watch: \(String(cString: strerror(errno)))") }
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        watchSignalPipe = fds[1]
        let handler: @convention(c) (Int32) -> Void = { _ in
            var b: UInt8 = 1
            _ = write(watchSignalPipe, &b, 1)
        }
        let oldInt = signal(SIGINT, handler), oldTerm = signal(SIGTERM, handler)
        // A parent may hand down a mask that blocks them (Foundation's Process does).
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        sigaddset(&stopSignals, SIGINT)
        sigaddset(&stopSignals, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &stopSignals, nil)
        var saved = termios()
        let keyboard = screen && isatty(context.stdin) == 1 && tcgetattr(context.stdin, &saved) == 0
        defer {
            if keyboard { _ = tcsetattr(context.stdin, TCSAFLUSH, &saved) }
            if screen { out.write(Self.leaveScreen); out.flush() }
            signal(SIGINT, oldInt)
            signal(SIGTERM, oldTerm)
            watchSignalPipe = -1
            close(fds[0])
            close(fds[1])
        }
        if keyboard {
            // Keys without Enter and without echo; ISIG stays, so Ctrl-C is SIGINT.
            var raw = saved
            raw.c_lflag &= ~tcflag_t(ICANON | ECHO)
            withUnsafeMutableBytes(of: &raw.c_cc) { cc in
                cc[Int(VMIN)] = 1
                cc[Int(VTIME)] = 0
            }
            _ = tcsetattr(context.stdin, TCSAFLUSH, &raw)
        }
        if screen { out.write(Self.enterScreen); out.flush() }

        var previous: [Int32: LiveCounters] = [:]
        // Each unusable answer once per watch, not every refresh; any makes the status 1 (vmps(1)).
        var reported: Set<String> = []
        var failed = false
        var rows = select()
        for (p, c) in zip(rows, reading(rows)) { previous[p.pid] = c }
        // The first view comes after a short sample, not a whole interval.
        var wait = min(interval, LiveFigures.sampleInterval)
        while true {
            if !waitForQuit(seconds: wait, signalFD: fds[0], keyboard: keyboard) { return failed ? .failure : .success }
            wait = interval
            rows = select()
            var current: [Int32: LiveCounters] = [:]
            for (k, c) in reading(rows).enumerated() {
                if let a = previous[rows[k].pid] { rows[k].rates = LiveRates(from: a, to: c) }
                current[rows[k].pid] = c
            }
            previous = current
            // JSON lines carry every field, the guest's addresses too.
            if !screen || options.asks("w") { rows = VMPsCommand.askingGuestAgents(rows, pidName) }
            rows = VMPsCommand.sorted(rows, options.sortKeys, pidName)
            if VMPsCommand.report(badAnswers: rows, pidName, context.console, reported: &reported) { failed = true }
            if screen { draw(rows) } else { emit(rows) }
        }
    }

    /// Every VM's counters now, QMP asked side by side; no connection is
    /// held between refreshes (vmdown and other clients get the socket).
    func reading(_ rows: [QemuProcess]) -> [LiveCounters] {
        QemuProcess.readings(rows, home: { $0.home(pidFile: pidName) }, disk: true, net: true).counters
    }

    /// One frame, clipped to the terminal's height.
    func draw(_ rows: [QemuProcess]) {
        var size = winsize()
        let height = ioctl(context.console.out.fd, UInt(TIOCGWINSZ), &size) == 0 && size.ws_row > 2 ? Int(size.ws_row) : 10_000
        var lines = ["vmps: \(rows.count) running, every \(Formatting.twoDecimals(interval)) s; q quits"]
        lines += VMPsCommand.table(rows, options, pidName, header: !options.raw)
        let out = context.console.out
        out.write(Self.clearScreen)
        out.write(lines.prefix(height - 1).map { $0.escapingControlCharacters }.joined(separator: "\n"))
        out.flush()
    }

    /// One JSON line per VM; `time` is the wall clock (milliseconds), for plots.
    func emit(_ rows: [QemuProcess]) {
        let now = (SystemClock.wallSeconds() * 1000).rounded() / 1000
        let out = context.console.out
        for p in rows {
            guard case let .object(pairs) = VMPsCommand.document(p, pidName, rates: true) else { continue }
            out.write(JSON.object([("time", .number(now))] + pairs).serialized(pretty: false) + "\n")
        }
        out.flush()
    }

    /// Waits `seconds`; false when the user quits (`q`, Ctrl-C as a key, a
    /// signal). A keyboard at end of file is no longer read.
    func waitForQuit(seconds: Double, signalFD: Int32, keyboard: Bool) -> Bool {
        let deadline = SystemClock.now() + seconds
        var readKeys = keyboard
        while true {
            let left = deadline - SystemClock.now()
            if left <= 0 { return true }
            var polled = [pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0)]
            if readKeys { polled.append(pollfd(fd: context.stdin, events: Int16(POLLIN), revents: 0)) }
            let n = poll(&polled, nfds_t(polled.count), Int32((left * 1000).rounded(.up)))
            if n < 0 { if errno == EINTR { continue } else { return true } }
            if polled[0].revents != 0 { return false }
            if readKeys, polled[1].revents != 0 {
                var buf = [UInt8](repeating: 0, count: 64)
                let got = read(context.stdin, &buf, buf.count)
                if got <= 0 { readKeys = false; continue }
                if buf[..<got].contains(where: { $0 == UInt8(ascii: "q") || $0 == UInt8(ascii: "Q") || $0 == 3 }) { return false }
            }
        }
    }
}
