import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// A process vmps takes for a QEMU (its argv[0] is `qemu-system-x86_64`),
/// running a bash `script` (not a lone command, which bash would exec):
/// cheap stand-ins for the rate and watch tests. Started in the background
/// by a shell that exits at once, so no Foundation Process waits for it;
/// killed by pid when released.
final class FakeQemu {
    let pid: Int32

    init(_ script: String, _ args: [String] = []) throws {
        let launcher = "exec -a qemu-system-x86_64 /bin/bash -c \"$0\" \"$@\" </dev/null >/dev/null 2>&1 & echo $!"
        let r = try Subprocess("/bin/bash", ["-c", launcher, script] + args).run()
        guard r.status == 0, let pid = Int32(r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw VMToolsError(.failure, nil, "cannot start a stand-in QEMU: \(r.stderrText)")
        }
        self.pid = pid
        _ = waitUntil(10) { QemuProcess.read(pid: pid) != nil }
    }

    deinit {
        kill(pid, SIGKILL)
        _ = waitUntil(10) { QemuProcess.read(pid: pid) == nil }
    }
}

/// vmps's rate fields (vmps(1) RATES): CPU over a sampling interval, disk
/// rates from QMP, RAM and vCPUs from the command line.
@Suite(.serialized) struct VMPsRatesTests {
    /// `vmps -j …`'s objects, by pid.
    static func objects(_ r: CLI.Result) -> [Int: [String: Any]] {
        let list = (try? JSONSerialization.jsonObject(with: Data(r.out.utf8))) as? [[String: Any]] ?? []
        return Dictionary(list.compactMap { o in (o["pid"] as? Int).map { ($0, o) } }, uniquingKeysWith: { a, _ in a })
    }

    @Test func aBusyProcessIsAboveHalfACPUAndAnIdleOneNearZero() throws {
        let s = Scratch()
        let cli = try CLI(s)
        let busy = try FakeQemu("while :; do :; done", ["-m", "2G", "-smp", "cpus=3,sockets=1"])
        let idle = try FakeQemu("sleep 300; :")
        var last = ""
        // On two shared cores the busy one may be starved for a moment: poll.
        let held = waitUntil(60) {
            guard let r = try? cli.run("vmps", ["-j", "-o", "l", "-p", "\(busy.pid)", "\(idle.pid)"]) else { return false }
            last = r.out + r.err
            let o = Self.objects(r)
            guard let b = o[Int(busy.pid)]?["cpu_now_percent"] as? Double,
                  let i = o[Int(idle.pid)]?["cpu_now_percent"] as? Double else { return false }
            return b > 50 && i < 10
        }
        #expect(held, "\(last)")
        let o = Self.objects(try cli.run("vmps", ["-j", "-o", "l", "-p", "\(busy.pid)"]))[Int(busy.pid)] ?? [:]
        #expect(o["ram_mb"] as? Int == 2048)
        #expect(o["vcpus"] as? Int == 3)
        // No QMP socket, no tap: no disk or network rate, said as null.
        for key in ["disk_read_bytes_per_second", "disk_write_bytes_per_second", "net_rx_bytes_per_second", "net_tx_bytes_per_second"] {
            #expect(o.keys.contains(key) && o[key] is NSNull, "\(key): \(o)")
        }
        let table = try cli.run("vmps", ["-r", "-o", "pgvio", "-p", "\(busy.pid)"])
        #expect(table.out == "\(busy.pid)  2048  3  -  -\n", "\(table.out)")
        withExtendedLifetime(idle) {}
    }

    @Test func withoutARateFieldNothingIsSampled() throws {
        let s = Scratch()
        let cli = try CLI(s)
        let idle = try FakeQemu("sleep 300; :")
        let plain = try cli.run("vmps", ["-j", "-p", "\(idle.pid)"])
        let o = try #require(Self.objects(plain)[Int(idle.pid)], "\(plain.out)")
        // Not sampled: the rate keys are absent, the cheap ones there.
        #expect(o["cpu_now_percent"] == nil && o["disk_write_bytes_per_second"] == nil, "\(o)")
        #expect(o["ram_mb"] as? Int == 128 && o["vcpus"] as? Int == 1)
        // A rate as a sort key alone is enough to sample.
        let sorted = try cli.run("vmps", ["-j", "-s", "L", "-p", "\(idle.pid)"])
        #expect(Self.objects(sorted)[Int(idle.pid)]?["cpu_now_percent"] is Double, "\(sorted.out)")
        withExtendedLifetime(idle) {}
    }

    @Test func badWatchIntervalsAreUsageErrors() throws {
        let s = Scratch()
        let cli = try CLI(s)
        // A number after -w is its interval; anything else only when attached.
        for (bad, args) in [("0", ["-w", "0"]), ("0.01", ["-w", "0.01"]), ("-1", ["-w-1"]), ("x", ["-wx"]), ("nan", ["-wnan"])] {
            let r = try cli.run("vmps", args)
            #expect(r.status == 2 && r.err.contains("-w \(bad): the interval is a number of seconds"), "\(bad): \(r.err)")
        }
        let operand = try cli.run("vmps", ["-w", "x"])
        #expect(operand.status == 2 && operand.err.contains("too many parameters (-w x: the interval is a number of seconds)"), "\(operand.err)")
        let n = try cli.run("vmps", ["-n", "-w", "1"])
        #expect(n.status == 2 && n.err.contains("-n cannot be combined with -o, -s or -w"), "\(n.err)")
    }

    /// Two test guests (1 vCPU, TCG): one spins its CPU, one writes to its
    /// data disk for a while and then idles.
    @Test(.requiresGuest) func busyIdleAndWritingGuests() throws {
        guard let lab = try BootLab.guest() else { return }
        let spinner = try lab.makeVM("spinner")
        let writer = try lab.makeVM("writer")
        try #require(try lab.up(spinner, command: "spin 150").status == 0)
        try #require(try lab.up(writer, command: "scribble 0:0:1:0 20").status == 0)
        defer {
            _ = try? lab.down(spinner)
            _ = try? lab.down(writer)
        }
        func rates() -> [Int: [String: Any]] {
            (try? lab.cli.run("vmps", ["-j", "-o", "lo", "-d", spinner, writer])).map(Self.objects) ?? [:]
        }
        var last: [Int: [String: Any]] = [:]
        #expect(lab.readyOrDump(writer, "VMTOOLS-GUEST: SCRIBBLING"), "\(lab.serial(writer))")
        #expect(lab.readyOrDump(spinner, "VMTOOLS-GUEST: SPINNING"), "\(lab.serial(spinner))")
        let (sp, wr) = (try #require(lab.pid(spinner)), try #require(lab.pid(writer)))
        let writes = waitUntil(60) {
            last = rates()
            return (last[Int(wr)]?["disk_write_bytes_per_second"] as? Double ?? 0) > 0
        }
        #expect(writes, "no write rate while the guest writes: \(last)")
        #expect(lab.readyOrDump(writer, "VMTOOLS-GUEST: SCRIBBLED"), "\(lab.serial(writer))")
        let stopped = waitUntil(60) {
            last = rates()
            return last[Int(wr)]?["disk_write_bytes_per_second"] as? Double == 0
        }
        #expect(stopped, "the write rate did not return to 0: \(last)")
        // The spinner still spins (150 s), the writer idles. An idle busybox
        // guest under TCG takes a few percent here (timer ticks).
        #expect(lab.serial(spinner).contains("VMTOOLS-GUEST: SPINNING") && !lab.serial(spinner).contains("SPUN"), "\(lab.serial(spinner))")
        let cpu = waitUntil(90) {
            last = rates()
            guard let b = last[Int(sp)]?["cpu_now_percent"] as? Double, let i = last[Int(wr)]?["cpu_now_percent"] as? Double else { return false }
            return b > 50 && i < 10
        }
        #expect(cpu, "busy above 50 %, idle below 10 %: \(last)")
        #expect(waitUntil(240) { lab.serial(spinner).contains("VMTOOLS-GUEST: SPUN") }, "\(lab.serial(spinner))")
        let calm = waitUntil(60) {
            last = rates()
            return (last[Int(sp)]?["cpu_now_percent"] as? Double ?? 100) < 10
        }
        #expect(calm, "the CPU rate did not fall once the guest stopped spinning: \(last)")
    }
}
