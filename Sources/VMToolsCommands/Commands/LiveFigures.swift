import VMToolsCore
import VMToolsQEMU

/// The live figures of running VMs, shared by vmps (vmps(1) RATES) and
/// vminfo (vminfo(1) LIVE FIGURES): one sampling interval, the same units and
/// the same JSON keys.
enum LiveFigures {
    /// How long a one-shot sample takes (vmps(1) RATES, vminfo(1)).
    static let sampleInterval = 0.5

    /// vmps's fields that vminfo's `live` object repeats, by letter: CPU
    /// now, RSS, RAM, vCPUs, the four rates, uptime.
    static let letters: Set<Character> = ["l", "x", "g", "v", "i", "o", "r", "s", "t"]

    /// Each process with its rates over one interval (all read, one wait,
    /// all read again). `disk` and `net` say which counters to ask for.
    static func sample(_ processes: [QemuProcess], pidName: String, disk: Bool = true, net: Bool = true) -> [QemuProcess] {
        guard !processes.isEmpty else { return processes }
        let rates = QemuProcess.sampleRates(processes, home: { $0.home(pidFile: pidName) }, interval: sampleInterval,
                                            disk: disk, net: net)
        return processes.map { p in
            var p = p
            p.rates = rates[p.pid]
            return p
        }
    }

    /// KiB per second, one decimal; `-` when the counter is not available.
    static func kbText(_ v: Double?) -> String {
        guard let v else { return "-" }
        // A counter QMP gives (vmps -a: maybe another user's process) can make any rate.
        guard let tenths = Int(exactly: (v / 1024 * 10).rounded()) else { return "?" }
        return "\(tenths / 10).\(tenths % 10)"
    }

    static func rateJSON(_ v: Double?) -> JSON { v.map { .number($0.rounded()) } ?? .null }

    /// vminfo -j's `live` object: vmps -j's keys and values for `letters`.
    static func json(_ p: QemuProcess, pidName: String) -> JSON {
        .object([("interval_seconds", .number(sampleInterval))]
            + VMPsCommand.fields.filter { letters.contains($0.letter) }.map { ($0.jsonKey, VMPsCommand.jsonValue($0, p, pidName)) })
    }

    /// vminfo's lines (vminfo(1) LIVE FIGURES).
    static func lines(_ p: QemuProcess) -> [String] {
        let r = p.rates
        var lines = ["CPU now: " + (r?.cpuPercent.map { Formatting.twoDecimals($0) + " %" } ?? "-") + " (over \(Formatting.twoDecimals(sampleInterval)) s)"]
        let ram = p.ramMB.map { "\($0) MB" } ?? "-", vcpus = p.vcpus.map(String.init) ?? "-"
        lines.append("Memory: RSS \(Formatting.size(kilobytes: p.rssKB)) of \(ram) configured, vCPUs: \(vcpus)")
        if let r, r.diskRead != nil || r.diskWrite != nil {
            lines.append("Disk I/O: read \(kbText(r.diskRead)) KB/s, write \(kbText(r.diskWrite)) KB/s")
        } else {
            lines.append("Disk I/O: - (QEMU does not answer over QMP)")
        }
        if let r, r.netRx != nil || r.netTx != nil {
            lines.append("Network: rx \(kbText(r.netRx)) KB/s, tx \(kbText(r.netTx)) KB/s")
        } else {
            lines.append("Network: - (no tap interface: user networking has no counters)")
        }
        let up = QemuProcess.count(p.uptime)
        let hms = "\(up / 3600):\(up / 60 % 60 < 10 ? "0" : "")\(up / 60 % 60):\(up % 60 < 10 ? "0" : "")\(up % 60)"
        lines.append("Uptime: \(hms) (\(up) s)")
        return lines
    }
}
