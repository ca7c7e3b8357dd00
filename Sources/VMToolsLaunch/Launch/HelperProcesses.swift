import VMToolsCore
import VMToolsQEMU

#if canImport(Glibc)
import Glibc
#endif

/// The processes beside QEMU (passt, swtpm; LaunchPlan.HelperProcess):
/// started in the plan's order, each waited for until it made its socket,
/// stopped if the start fails or a foreground QEMU exits. Beside a
/// daemonised QEMU they outlive vmup, tied to QEMU by the socket it holds.
struct HelperProcesses {
    private var running: [Subprocess.Running] = []

    /// Sockets, pid file and logs QEMU and its helpers create are 0600,
    /// whatever the caller's umask (Docs/vmup.1, "Files in the VM home").
    static let privateUmask: mode_t = 0o177

    /// Each helper's forwards with their real ports, for vminfo and vmps
    /// (LaunchPlan.HelperProcess.forwardsFile); removed with the run files.
    static func recordForwards(_ plan: LaunchPlan) throws {
        for (i, h) in plan.helpers.enumerated() {
            guard let file = h.forwardsFile else { continue }
            let lines = plan.helperForwards.filter { $0.helper == i }.map { LiveForward($0).description + "\n" }
            try FileSystem.writeAtomically(Array(lines.joined().utf8), to: file, mode: 0o600)
        }
    }

    /// Starts them in `dir`; one that fails, or makes no socket in time,
    /// stops those already started.
    mutating func start(_ plan: LaunchPlan, in dir: String) throws {
        for h in plan.helpers {
            do {
                var helper = Subprocess(h.executable, h.arguments, workingDirectory: dir)
                helper.umask = Self.privateUmask
                let process = try helper.start(output: h.log)
                running.append(process)
                if let path = h.readyPath { try Self.waitForSocket(path, of: process, helper: h) }
            } catch {
                stop()
                throw error
            }
        }
    }

    /// Readiness: the socket exists. One that gave up (passt without a
    /// routable interface) says why in its log.
    private static func waitForSocket(_ path: String, of process: Subprocess.Running, helper h: LaunchPlan.HelperProcess) throws {
        let deadline = SystemClock.now() + 10
        while !FileSystem.exists(path), SystemClock.now() < deadline {
            if let status = process.exitStatus() {
                throw VMToolsError(.failure, h.executable, "exited with status \(status) before making its socket \(path)" + lastLine(of: h.log))
            }
            SystemClock.sleep(0.02)
        }
        guard FileSystem.exists(path) else {
            throw VMToolsError(.failure, h.executable, "made no socket \(path) within 10 seconds" + lastLine(of: h.log))
        }
    }

    /// `: LINE`, the last line a helper logged, or nothing.
    static func lastLine(of log: String?) -> String {
        guard let log, let text = (try? FileSystem.readTextIfExists(log)) ?? nil else { return "" }
        // passt without a system logger says so on every line.
        let lines = text.split(separator: "\n").filter { !$0.hasPrefix("Failed to send") && !$0.allSatisfy(\.isWhitespace) }
        return lines.last.map { ": " + String($0).escapingControlCharacters } ?? ""
    }

    mutating func stop() {
        for h in running { h.terminate() }
        running.removeAll()
    }

    /// Beside a daemonised QEMU: they are no longer ours to stop.
    mutating func release() { running.removeAll() }
}

extension LiveForward {
    /// A helper's forward, its port chosen.
    init(_ f: LaunchPlan.HelperForward) {
        self.init(nic: f.nic, proto: f.forward.proto.rawValue, address: f.forward.address, hostPort: f.forward.hostPort, guestPort: f.forward.guestPort)
    }
}
