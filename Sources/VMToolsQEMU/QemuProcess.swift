import VMToolsCore

#if canImport(Glibc)
import Glibc
#endif

/// A running QEMU, read from /proc (faster than `ps`, and exact argv).
public struct QemuProcess: Sendable, Equatable {
    public var pid: Int32
    public var uid: UInt32
    public var argv: [String]
    /// Virtual memory size in KiB, as `ps -o vsz` prints it.
    public var vszKB: Int
    /// CPU time over lifetime, in percent, as `ps -o pcpu` computes it.
    public var cpuPercent: Double
    /// Resident memory in KiB.
    public var rssKB: Int = 0
    /// Seconds since the process started.
    public var uptime: Double = 0
    /// Rates over a sampling interval, when vmps asked for them (vmps(1) RATES).
    public var rates: LiveRates? = nil
    /// The guest agent's answer, once asked (`askingGuestAgents`).
    public var guestAgentStatus: GuestAgentStatus? = nil

    public var user: String {
        if let pw = getpwuid(uid), let n = pw.pointee.pw_name { return String(cString: n) }
        return String(uid)
    }

    /// The process `pid` if it is a QEMU system emulator, else nil (also for
    /// a zombie, whose command line is empty).
    public static func read(pid: Int32) -> QemuProcess? {
        guard let raw = try? FileSystem.readBytes("/proc/\(pid)/cmdline", limit: 1 << 20), !raw.isEmpty else { return nil }
        var argv = raw.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        if argv.last == "" { argv.removeLast() }
        guard let first = argv.first, first.lastPathComponent.hasPrefix("qemu-system-") else { return nil }
        var st = stat()
        guard stat("/proc/\(pid)", &st) == 0 else { return nil }
        var vsz = 0, rss = 0
        var cpu = 0.0, age = 0.0
        // After the command name: state is field 3, so index k is field k + 3.
        if let fields = statFields(pid: pid), fields.count > 21 {
            let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
            let cpuTicks = fields[11] + fields[12]
            let start = fields[19] / ticks
            vsz = Self.count(fields[20]) / 1024
            rss = Self.count(fields[21] * Double(sysconf(Int32(_SC_PAGESIZE))) / 1024)
            // CLOCK_BOOTTIME is /proc/uptime's clock, without a file to read per VM.
            var now = timespec()
            if clock_gettime(CLOCK_BOOTTIME, &now) == 0 {
                age = max(0, Double(now.tv_sec) + Double(now.tv_nsec) / 1e9 - start)
                if age > 0 { cpu = (cpuTicks / ticks) / age * 100 }
            }
        }
        return QemuProcess(pid: pid, uid: st.st_uid, argv: argv, vszKB: vsz, cpuPercent: cpu, rssKB: rss, uptime: age)
    }

    /// A count read as a Double, as an Int: 0 for what no count is (Int(_:) traps on those).
    package static func count(_ v: Double) -> Int { v.isFinite && v >= 0 && v < 0x1p62 ? Int(v) : 0 }

    /// The numeric fields of /proc/PID/stat after the command name (index k
    /// is field k + 3; the state letter reads as 0), parsed on bytes: the
    /// name may hold spaces and `)`, and finding the last `)` in a String
    /// cost vmps -w more than the rest of a reading (Benchmarks/README, Rates).
    static func statFields(pid: Int32) -> [Double]? {
        guard let bytes = try? FileSystem.readBytes("/proc/\(pid)/stat", limit: 4096),
              let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        var fields: [Double] = []
        fields.reserveCapacity(52)
        var k = close + 1
        let space = UInt8(ascii: " "), newline = UInt8(ascii: "\n"), zero = UInt8(ascii: "0"), nine = UInt8(ascii: "9")
        while k < bytes.count {
            while k < bytes.count, bytes[k] == space || bytes[k] == newline { k += 1 }
            guard k < bytes.count else { break }
            let negative = bytes[k] == UInt8(ascii: "-")
            if negative { k += 1 }
            var v = 0.0
            while k < bytes.count, bytes[k] >= zero, bytes[k] <= nine { v = v * 10 + Double(bytes[k] - zero); k += 1 }
            while k < bytes.count, bytes[k] != space, bytes[k] != newline { k += 1 }
            fields.append(negative ? -v : v)
        }
        return fields
    }

    /// The value following `option` in argv.
    public func argument(after option: String) -> String? {
        guard let k = argv.firstIndex(of: option), k + 1 < argv.count else { return nil }
        return argv[k + 1]
    }

    /// Splits a QEMU option value at single commas; `,,` is a literal comma.
    static func splitOptions(_ s: String) -> [String] {
        var parts: [String] = []
        var cur = ""
        var it = Array(s)
        var k = 0
        while k < it.count {
            if it[k] == "," {
                if k + 1 < it.count, it[k + 1] == "," { cur.append(","); k += 2; continue }
                parts.append(cur)
                cur = ""
            } else {
                cur.append(it[k])
            }
            k += 1
        }
        parts.append(cur)
        it.removeAll()
        return parts
    }

    /// What the user sees: the vmps `d` field (vmps(1)). VNC ports are
    /// 5900 + display number, as QEMU counts them.
    public var display: String {
        if argument(after: "-vga") == "none" { return "disabled" }
        if let d = argument(after: "-display") {
            let kind = Self.splitOptions(d)[0]
            if kind.hasPrefix("gtk") { return "gtk" }
            if kind == "none" { return "none" }
            if kind == "sdl" { return "sdl" }
            if kind.hasPrefix("vnc=unix:") { return "vnc+unix://" + runPath(String(kind.dropFirst(9)), home: nil) }
            if kind.hasPrefix("vnc=") { return vncURL(String(kind.dropFirst(4))) ?? "?" }
        }
        if let s = argument(after: "-spice") {
            var addr = "", port = "", unix = false
            for o in Self.splitOptions(s) {
                if o.hasPrefix("addr=") { addr = String(o.dropFirst(5)) }
                if o.hasPrefix("port=") { port = String(o.dropFirst(5)) }
                if o == "unix=on" { unix = true }
            }
            // vm_display_iface=unix (vmtools.conf(5)): a socket, no port.
            return unix ? "spice+unix://" + runPath(addr, home: nil) : "spice://\(addr):\(port)"
        }
        if let v = argument(after: "-vnc") { return vncURL(Self.splitOptions(v)[0]) ?? "?" }
        return "?"
    }

    private func vncURL(_ spec: String) -> String? {
        // Any process named qemu-system-* is read (vmps -a): 5900 + n must not overflow.
        guard let colon = spec.lastIndex(of: ":"), let n = Int(spec[spec.index(after: colon)...]), (0...65535 - 5900).contains(n) else { return nil }
        return "vnc://\(spec[..<colon]):\(5900 + n)"
    }

    /// The human monitor socket, from `-monitor unix:PATH,…`.
    public func monitorSocket(home: String?) -> String? { socket(after: "-monitor", home: home) }

    /// The QMP socket, from `-qmp unix:PATH,…`.
    public func qmpSocket(home: String?) -> String? { socket(after: "-qmp", home: home) }

    /// A `unix:PATH,…` socket option. Relative paths are relative to QEMU's
    /// working directory: the directory of its absolute `-pidfile` (a VM
    /// home or a run-time directory), else `home`.
    func socket(after option: String, home: String?) -> String? {
        guard let m = argument(after: option), m.hasPrefix("unix:") else { return nil }
        return runPath(Self.splitOptions(String(m.dropFirst(5)))[0], home: home)
    }

    /// `path` made absolute against QEMU's working directory (see `socket`).
    func runPath(_ path: String, home: String?) -> String {
        if path.hasPrefix("/") { return path }
        let pidFile = argument(after: "-pidfile")
        guard let dir = pidFile.flatMap({ $0.hasPrefix("/") ? $0.deletingLastPathComponent : nil }) ?? home else { return path }
        return dir.appendingPathComponent(path.hasPrefix("./") ? String(path.dropFirst(2)) : path)
    }

    /// `-name guest=NAME` (vmtools) or `-name NAME,…` (QEMU's implied key).
    public var name: String? {
        guard let options = argument(after: "-name").map(Self.splitOptions) else { return nil }
        if let g = options.last(where: { $0.hasPrefix("guest=") }) { return String(g.dropFirst(6)) }
        return options[0]
    }

    /// Where the run-time files are: the `-pidfile` argument without
    /// `/qemu.pid` (the anchor both the original and vmtools write), a VM
    /// home or a run-time directory (`RuntimeDirectory`); nil for a QEMU
    /// vmtools did not start.
    public func runDirectory(pidFile: String) -> String? {
        guard let p = argument(after: "-pidfile"), p.hasPrefix("/"), p.lastPathComponent == pidFile else { return nil }
        return p.deletingLastPathComponent
    }

    /// The VM home, or nil for bare boots (and QEMUs vmtools did not start).
    public func home(pidFile: String) -> String? {
        guard let dir = runDirectory(pidFile: pidFile) else { return nil }
        return RuntimeDirectory.isRunDirectory(dir) ? RuntimeDirectory.home(of: dir) : dir
    }

    /// `kvm` or `tcg`, from `-accel`, `-enable-kvm` or `-machine accel=`.
    public var accelerator: String {
        if let a = argument(after: "-accel") { return Self.splitOptions(a)[0] }
        if argv.contains("-enable-kvm") { return "kvm" }
        if let m = argument(after: "-machine"), let acc = Self.splitOptions(m).first(where: { $0.hasPrefix("accel=") }) {
            return String(acc.dropFirst(6))
        }
        return "tcg"
    }

    /// Every QEMU system emulator running on this host (a /proc scan, ~2 ms).
    public static func all() -> [QemuProcess] {
        guard let names = try? FileSystem.listDirectory("/proc") else { return [] }
        return names.compactMap { Int32($0) }.sorted().compactMap { read(pid: $0) }
    }
}

/// "Is this VM running?" (vmtools(1) LOCKING): the VM runs
/// when a QEMU process holds the POSIX lock QEMU takes on its own `-pidfile`.
/// A stale pid file, or a pid reused by another program, is harmless.
public enum RunningState {
    /// A home on read-only media has its pid file in its run-time directory:
    /// ours, or the one in the command line of a QEMU started with another
    /// `$XDG_RUNTIME_DIR` (a /proc scan, for such homes only).
    public static func process(home: String, global: GlobalConfig) -> QemuProcess? {
        let pidName = global.fileNames.pid
        if let p = process(pidFile: home.appendingPathComponent(pidName))
            ?? process(pidFile: RuntimeDirectory.forHome(home).appendingPathComponent(pidName)) {
            return p
        }
        guard !FileSystem.isWritable(home) else { return nil }
        for q in QemuProcess.all() where q.home(pidFile: pidName) == home {
            if let dir = q.runDirectory(pidFile: pidName), let p = process(pidFile: dir.appendingPathComponent(pidName)) { return p }
        }
        return nil
    }

    public static func process(pidFile pidPath: String) -> QemuProcess? {
        switch PidFile.probe(pidPath) {
        case .absent: return nil
        case let .lockedBy(pid): if let p = QemuProcess.read(pid: pid) { return p }
        case .unlocked: break
        }
        // No lock to see (an old QEMU, or a file system without POSIX locks):
        // fall back to the original's rule — the pid names a QEMU whose
        // -pidfile is this very file.
        guard let text = try? FileSystem.readTextIfExists(pidPath, limit: 64),
              let pid = Int32(text.trimmingTrailingWhitespace()), pid > 0,
              let p = QemuProcess.read(pid: pid), let arg = p.argument(after: "-pidfile"), arg.hasPrefix("/"),
              FileSystem.realPath(arg) == FileSystem.realPath(pidPath) else { return nil }
        return p
    }
}
