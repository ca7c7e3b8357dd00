import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsCommands

/// vminfo's live figures (vminfo(1) LIVE FIGURES): sampled once over vmps's
/// interval, for running VMs only, and only for the general information
/// section or `-j -i`.
@Suite(.serialized) struct VMInfoLiveTests {
    /// A VM home whose `qemu.pid` names a stand-in QEMU (FakeQemu) that has
    /// that pid file on its command line: running by the original's rule.
    static func running(_ s: Scratch, _ name: String, _ script: String, _ args: [String]) throws -> FakeQemu {
        try s.write("\(name)/vm.settings", "vm_name=\(name)\n")
        let q = try FakeQemu(script, args + ["-pidfile", s.url("\(name)/qemu.pid")])
        // No newline: the fallback reads the pid with trimmingTrailingWhitespace, which keeps one.
        try s.write("\(name)/qemu.pid", "\(q.pid)")
        return q
    }

    /// `state` of each VM in `vminfo -j …`, by name.
    static func states(_ r: CLI.Result) -> [String: [String: Any]] {
        let list = (try? JSONSerialization.jsonObject(with: Data(r.out.utf8))) as? [[String: Any]] ?? []
        return Dictionary(list.compactMap { o in (o["name"] as? String).map { ($0, o["state"] as? [String: Any] ?? [:]) } },
                          uniquingKeysWith: { a, _ in a })
    }

    /// The fastest of three runs, in seconds: what the command itself waits.
    static func fastest(_ cli: CLI, _ args: [String]) throws -> (seconds: Double, result: CLI.Result) {
        var best = Double.infinity
        var last: CLI.Result?
        for _ in 0..<3 {
            let start = Date()
            last = try cli.run("vminfo", args)
            best = min(best, Date().timeIntervalSince(start))
        }
        return (best, try #require(last))
    }

    @Test func aRunningVMShowsItsLiveFiguresAndAStoppedOneDoesNotWait() throws {
        let s = Scratch()
        let cli = try CLI(s)
        let busy = try Self.running(s, "busy", "while :; do :; done", ["-m", "512", "-smp", "cpus=2"])
        let idle = try Self.running(s, "idle", "sleep 300; :", [])
        defer { withExtendedLifetime((busy, idle)) {} }
        try s.write("stopped/vm.settings", "vm_name=stopped\n")

        // Text: the general information section of a running VM.
        let text = try cli.run("vminfo", ["-i", s.url("busy")])
        #expect(text.status == 0, "\(text.err)")
        let lines = text.outLines
        for prefix in ["CPU now: ", "Memory: RSS ", "Disk I/O: ", "Network: ", "Uptime: "] {
            #expect(lines.filter { $0.hasPrefix(prefix) }.count == 1, "\(prefix): \(text.out)")
        }
        #expect(lines.contains { $0.hasPrefix("Memory: RSS ") && $0.hasSuffix(" of 512 MB configured, vCPUs: 2") }, "\(text.out)")
        // A stand-in has no QMP socket and no tap: said, not shown as zero.
        #expect(lines.contains("Disk I/O: - (QEMU does not answer over QMP)"), "\(text.out)")

        // Busy above half a CPU, idle near zero; polled, as two shared cores may starve the busy one.
        var last = ""
        let plausible = waitUntil(60) {
            guard let r = try? cli.run("vminfo", ["-j", "-i", s.url("busy"), s.url("idle")]) else { return false }
            last = r.out + r.err
            let st = Self.states(r)
            guard let b = (st["busy"]?["live"] as? [String: Any])?["cpu_now_percent"] as? Double,
                  let i = (st["idle"]?["live"] as? [String: Any])?["cpu_now_percent"] as? Double else { return false }
            return b > 50 && i < 10
        }
        #expect(plausible, "\(last)")
        let live = try #require(Self.states(try cli.run("vminfo", ["-ji", s.url("busy")]))["busy"]?["live"] as? [String: Any])
        #expect(Set(live.keys) == Set(["interval_seconds", "cpu_now_percent", "rss_kb", "ram_mb", "vcpus", "uptime_seconds",
                                       "disk_read_bytes_per_second", "disk_write_bytes_per_second",
                                       "net_rx_bytes_per_second", "net_tx_bytes_per_second"]), "\(live)")
        #expect(live["ram_mb"] as? Int == 512 && live["vcpus"] as? Int == 2, "\(live)")
        #expect((live["rss_kb"] as? Int).map { $0 > 0 } == true, "\(live)")
        #expect(live["disk_write_bytes_per_second"] is NSNull, "\(live)")

        // Two running VMs wait one interval, not two.
        let both = try Self.fastest(cli, ["-i", s.url("busy"), s.url("idle")])
        #expect(both.result.outLines.filter { $0.hasPrefix("CPU now: ") }.count == 2, "\(both.result.out)")
        #expect(both.seconds >= LiveFigures.sampleInterval && both.seconds < 2 * LiveFigures.sampleInterval, "\(both.seconds) s")

        // Not sampled: a stopped VM, -t of a running one, -j without -i.
        let stopped = try Self.fastest(cli, [s.url("stopped")])
        #expect(stopped.result.status == 0 && stopped.result.out.contains("State: not running"), "\(stopped.result.out)")
        #expect(!stopped.result.out.contains("CPU now"), "\(stopped.result.out)")
        #expect(stopped.seconds < 0.3, "vminfo of a stopped VM took \(stopped.seconds) s")
        let tree = try Self.fastest(cli, ["-t", s.url("busy")])
        #expect(tree.result.status == 0 && !tree.result.out.contains("CPU now"))
        #expect(tree.seconds < 0.3, "vminfo -t of a running VM took \(tree.seconds) s")
        let plain = try Self.fastest(cli, ["-j", s.url("busy")])
        #expect(Self.states(plain.result)["busy"]?["running"] as? Bool == true, "\(plain.result.out)")
        #expect(Self.states(plain.result)["busy"]?["live"] == nil, "\(plain.result.out)")
        #expect(plain.seconds < 0.3, "vminfo -j took \(plain.seconds) s")
    }
}
