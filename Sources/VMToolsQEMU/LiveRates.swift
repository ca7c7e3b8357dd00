import VMToolsCore

#if canImport(Glibc)
import Glibc
#endif

/// One reading of a running QEMU's counters; two readings make its rates
/// (vmps(1) RATES). A counter QEMU does not expose is nil.
public struct LiveCounters: Sendable, Equatable {
    /// Monotonic seconds when the counters were read.
    public var time: Double
    /// utime + stime of the whole process (every thread), in clock ticks.
    public var cpuTicks: Double?
    /// Bytes read and written by the guest's block devices (QMP `query-blockstats`).
    public var diskRead: Double?
    public var diskWrite: Double?
    /// Bytes received and sent by the guest over tap interfaces.
    public var netRx: Double?
    public var netTx: Double?
    /// QMP's answer, when it could not be used (the disk counters are then nil).
    public var badAnswer: BadAnswer?
}

/// Rates between two readings, per second; nil when a counter is missing.
public struct LiveRates: Sendable, Equatable {
    /// Percent of one host processor.
    public var cpuPercent: Double?
    public var diskRead: Double?
    public var diskWrite: Double?
    public var netRx: Double?
    public var netTx: Double?
    /// Answers of either reading that could not be used.
    public var badAnswers: [BadAnswer] = []

    public init(from a: LiveCounters, to b: LiveCounters) {
        let dt = b.time - a.time
        func rate(_ x: Double?, _ y: Double?) -> Double? {
            guard let x, let y, dt > 0 else { return nil }
            // A counter that went back (a device removed) is no rate.
            return max(0, y - x) / dt
        }
        cpuPercent = rate(a.cpuTicks, b.cpuTicks).map { $0 / Double(sysconf(Int32(_SC_CLK_TCK))) * 100 }
        diskRead = rate(a.diskRead, b.diskRead)
        diskWrite = rate(a.diskWrite, b.diskWrite)
        netRx = rate(a.netRx, b.netRx)
        netTx = rate(a.netTx, b.netTx)
        badAnswers = [a.badAnswer, b.badAnswer].compactMap { $0 }
        if badAnswers.count == 2, badAnswers[0] == badAnswers[1] { badAnswers.removeLast() }
    }
}

extension QemuProcess {
    /// The configured RAM in MiB, from `-m` (QEMU's default 128 MiB without it).
    public var ramMB: Int? {
        guard let m = argument(after: "-m") else { return 128 }
        var size = Self.splitOptions(m).first { !$0.contains("=") } ?? ""
        if let s = Self.splitOptions(m).first(where: { $0.hasPrefix("size=") }) { size = String(s.dropFirst(5)) }
        let units: [Character: Double] = ["k": 1.0 / 1024, "m": 1, "g": 1024, "t": 1_048_576]
        // Any process named qemu-system-* is listed (vmps -a): `-m 1e300G` or `-m nan` must not trap.
        func mib(_ n: Double) -> Int? { n.isFinite && n >= 0 && n < 0x1p53 ? Int(n) : nil }
        if let last = size.last, let unit = units[Character(last.lowercased())], let n = Double(size.dropLast()) {
            return mib(n * unit)
        }
        // A bare number is MiB (qemu-system(1) -m).
        return Double(size).flatMap(mib)
    }

    /// The vCPUs, from `-smp N` or `-smp cpus=N,…` (1 without it).
    public var vcpus: Int? {
        guard let s = argument(after: "-smp") else { return 1 }
        for o in Self.splitOptions(s) {
            if let n = Int(o) { return n }
            if o.hasPrefix("cpus="), let n = Int(o.dropFirst(5)) { return n }
        }
        return nil
    }

    /// Whether QEMU was given a disk or CD-ROM: `-drive`, `-blockdev`,
    /// `-hda`…`-hdd`, `-cdrom` (a VM without one has no block counters).
    var hasBlockDevices: Bool {
        argv.contains { ["-drive", "-blockdev", "-hda", "-hdb", "-hdc", "-hdd", "-cdrom"].contains($0) }
    }

    /// Host tap interfaces, from `-netdev tap,…,ifname=X` or `-nic tap,…`.
    var tapInterfaces: [String] {
        argv.flatMap { a -> [String] in
            guard a.hasPrefix("tap,") else { return [] }
            return Self.splitOptions(a).filter { $0.hasPrefix("ifname=") }.map { String($0.dropFirst(7)) }
        }
    }

    /// The counters now. `disk` asks QEMU over QMP (a connection and a
    /// round trip); the CPU and tap counters are files.
    public func counters(home: String?, disk: Bool, net: Bool) -> LiveCounters {
        Self.readings([self], home: { _ in home }, disk: disk, net: net).counters[0]
    }

    /// The counters of every process now. The QEMUs that have a block
    /// device are asked over QMP side by side (`QMPClient.openAll`), and
    /// their connections returned for a second reading; nil for the others.
    public static func readings(_ processes: [QemuProcess], home: (QemuProcess) -> String?, disk: Bool,
                                net: Bool) -> (counters: [LiveCounters], clients: [QMPClient?]) {
        var counters = processes.map { $0.counters(net: net) }
        // No block device on the command line, no QMP round trip: nothing to count.
        var clients = disk ? QMPClient.openAll(processes.map { $0.hasBlockDevices ? $0.qmpSocket(home: home($0)) : nil })
                           : processes.map { _ in nil }
        let disks = QMPClient.blockBytes(clients)
        for k in counters.indices {
            (counters[k].disk, counters[k].badAnswer) = (disks[k].bytes, disks[k].bad)
            if disks[k].bytes == nil { clients[k] = nil }
        }
        return (counters, clients)
    }

    /// The counters that are files: CPU ticks and, with `net`, tap bytes.
    func counters(net: Bool) -> LiveCounters {
        var c = LiveCounters(time: SystemClock.now())
        if let f = Self.statFields(pid: pid), f.count > 12 { c.cpuTicks = f[11] + f[12] }
        let taps = tapInterfaces
        if net, !taps.isEmpty {
            // The host side's tx is what the guest receives.
            func sum(_ name: String) -> Double? {
                var total = 0.0
                for t in taps {
                    guard let v = (try? FileSystem.readTextIfExists("/sys/class/net/\(t)/statistics/\(name)"))
                        .flatMap({ $0.flatMap { Double($0.trimmingTrailingWhitespace()) } }) else { return nil }
                    total += v
                }
                return total
            }
            c.netRx = sum("tx_bytes")
            c.netTx = sum("rx_bytes")
        }
        return c
    }

    /// Rates of every process over one `interval` (all read, one wait, all
    /// read again), by pid. The QMP connections of the first reading are
    /// held over the interval, so the second is one round trip for all
    /// (another QMP client of such a VM waits until the interval ends;
    /// vmps(1) RATES).
    public static func sampleRates(_ processes: [QemuProcess], home: (QemuProcess) -> String?, interval: Double,
                                   disk: Bool, net: Bool) -> [Int32: LiveRates] {
        let (first, clients) = readings(processes, home: home, disk: disk, net: net)
        SystemClock.sleep(max(0, interval - (SystemClock.now() - (first.first?.time ?? SystemClock.now()))))
        var second = processes.map { $0.counters(net: net) }
        let disks = QMPClient.blockBytes(clients)
        var rates: [Int32: LiveRates] = [:]
        for (k, p) in processes.enumerated() {
            (second[k].disk, second[k].badAnswer) = (disks[k].bytes, disks[k].bad)
            rates[p.pid] = LiveRates(from: first[k], to: second[k])
        }
        return rates
    }
}

extension LiveCounters {
    /// The block counters as one value, for QMPClient.blockBytes.
    var disk: (read: Double, write: Double)? {
        get { diskRead.flatMap { r in diskWrite.map { (r, $0) } } }
        set { diskRead = newValue?.read; diskWrite = newValue?.write }
    }
}

extension QMPClient {
    /// Bytes read and written by each VM, summed over its block devices;
    /// nil where there is no connection or QEMU does not answer. Every
    /// QEMU is asked before any answer is read.
    static func blockBytes(_ clients: [QMPClient?], timeout: Double = 1) -> [(bytes: (read: Double, write: Double)?, bad: BadAnswer?)] {
        let sent = clients.map { c in (try? c?.send("query-blockstats")) != nil }
        return clients.indices.map { k in
            guard sent[k], let c = clients[k] else { return (nil, nil) }
            do { return (try c.blockBytes(timeout: timeout), nil) } catch let bad as BadAnswer { return (nil, bad) } catch { return (nil, nil) }
        }
    }

    /// The reply to `query-blockstats`, summed. Each counter is a whole
    /// number of bytes that fits an Int, and so is the sum.
    private func blockBytes(timeout: Double) throws -> (read: Double, write: Double) {
        let answer: JSON
        do { answer = try reply(to: "query-blockstats", timeout: timeout) } catch let e as VMToolsError {
            throw BadAnswer(.qmp, e) ?? e
        }
        guard let list = answer.arrayValue else { throw BadAnswer(.qmp, "block statistics that are not a list") }
        var r = 0, w = 0
        for dev in list {
            func counter(_ key: String) throws(BadAnswer) -> Int {
                guard let v = dev["stats"]?[key], v != .null else { return 0 }
                guard let n = v.integerValue, n >= 0 else { throw BadAnswer(.qmp, "\(key) \(BadAnswer.quote(v)) is not a byte count") }
                return n
            }
            let (r2, o1) = r.addingReportingOverflow(try counter("rd_bytes"))
            let (w2, o2) = w.addingReportingOverflow(try counter("wr_bytes"))
            guard !o1, !o2 else { throw BadAnswer(.qmp, "byte counts whose sum does not fit 64 bits") }
            (r, w) = (r2, w2)
        }
        return (Double(r), Double(w))
    }
}
