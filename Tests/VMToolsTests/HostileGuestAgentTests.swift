import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// A guest agent or QMP monitor that answers badly (issue 22, section 4):
/// numbers out of range (`"prefix": 1e300`), JSON nested 300,000 deep, huge
/// strings, an answer without end, garbage. Two real QEMUs (`-machine
/// none`) run; the sockets of one are taken over by a fake peer, a Python
/// process of its own, and the other's agent answers well. `vminfo`, `vmps
/// -j` and `vmps -w` do not crash (their exit status is no signal), print
/// one line naming the VM and the peer, and the other VM's output is there.
@Suite struct HostileGuestAgentTests {
    /// The fake peer: `agent` or `qmp`, the socket to take over, what to
    /// answer (`good` or a hostile mode), a file to create once listening.
    static let peer = #"""
        import json, os, socket, sys
        kind, path, mode, ready = sys.argv[1:5]
        GOOD = [{"name": "eth0", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "10.0.2.15", "prefix": 24}]}]

        def interfaces(prefix):
            return ('{"return": [{"name": "eth0", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "10.0.2.15", "prefix": %s}]}]}\n' % prefix).encode()

        AGENT = {
            "good": (json.dumps({"return": GOOD}) + "\n").encode(),
            "prefix-1e300": interfaces("1e300"),
            "prefix--1e300": interfaces("-1e300"),
            "prefix-2^63": interfaces("9223372036854775808"),
            "prefix-1e999": interfaces("1e999"),
            "prefix-NaN": interfaces("NaN"),
            "prefix-string": interfaces('"24"'),
            "prefix-129": interfaces("129"),
            "deep-array": b"[" * 300000 + b"\n",
            "deep-object": b'{"return": ' * 300000 + b"\n",
            "huge-name": (json.dumps({"return": [{"name": "e" * (1 << 20), "ip-addresses": GOOD[0]["ip-addresses"]}]}) + "\n").encode(),
            "endless": b"x" * (9 << 20),
            "garbage": b"\x00\xfe{{{ not json \x1b[2J\n",
            "not-a-list": b'{"return": {"name": "eth0"}}\n',
        }

        def blockstats(rd, wr="0", more=""):
            return ('{"return": [{"device": "d0", "stats": {"rd_bytes": %s, "wr_bytes": %s}}%s]}\n' % (rd, wr, more)).encode()

        QMP = {
            "rd-1e300": blockstats("1e300"),
            "rd-negative": blockstats("-5"),
            "wr-2^64": blockstats("0", "18446744073709551616"),
            "rd-string": blockstats('"many"'),
            "sum-overflow": blockstats("9223372036854774784", "0", ', {"device": "d1", "stats": {"rd_bytes": 9223372036854774784, "wr_bytes": 0}}'),
            "deep-array": b"[" * 300000 + b"\n",
            "garbage": b"\x00\xfe{{{ not json\n",
            "endless": b"x" * (9 << 20),
        }

        def serve(c):
            if kind == "qmp":
                c.sendall(b'{"QMP": {"version": {"qemu": {"micro": 0, "minor": 0, "major": 8}}, "capabilities": []}}\n')
            buf = b""
            while True:
                data = c.recv(65536)
                if not data:
                    return
                buf += data.replace(b"\xff", b"")
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    command = json.loads(line)
                    name = command.get("execute")
                    if name == "guest-sync-delimited":
                        c.sendall(b"\xff" + json.dumps({"return": command["arguments"]["id"]}).encode() + b"\n")
                    elif name == "guest-network-get-interfaces":
                        c.sendall(AGENT[mode])
                    elif name == "query-blockstats":
                        c.sendall(QMP[mode])
                    else:
                        c.sendall(b'{"return": {}}\n')

        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.listen(16)
        open(ready, "w").close()
        while True:
            c, _ = s.accept()
            try:
                serve(c)
            except (OSError, ValueError):
                pass
            finally:
                c.close()
        """#

    static let agentModes = ["prefix-1e300", "prefix--1e300", "prefix-2^63", "prefix-1e999", "prefix-NaN", "prefix-string", "prefix-129",
                             "deep-array", "deep-object", "huge-name", "endless", "garbage", "not-a-list"]
    static let qmpModes = ["rd-1e300", "rd-negative", "wr-2^64", "rd-string", "sum-overflow", "deep-array", "garbage", "endless"]

    /// Two running QEMUs, `bad` and `good`, and the fake peers; everything
    /// started is stopped by pid when the fixture goes.
    final class Fixture {
        let cli: CLI
        var pids: [Int32] = []
        var peers: [Process] = []
        var bad: String { cli.scratch.url("bad") }
        var good: String { cli.scratch.url("good") }

        init(agent: Bool) throws {
            cli = try CLI(Scratch())
            guard let qemu = requireTool("qemu-system-x86_64") else { throw VMToolsError(.failure, nil, "no QEMU") }
            for name in ["bad", "good"] {
                try cli.scratch.write("\(name)/vm.settings", "vm_name=\(name)\n")
                try cli.scratch.write("\(name)/disk.raw", String(repeating: "\0", count: 65536))
                let home = cli.scratch.url(name)
                var args = ["-machine", "none", "-nodefaults", "-display", "none", "-daemonize", "-pidfile", home + "/qemu.pid",
                            "-qmp", "unix:\(home)/qmp.sock,server=on,wait=off",
                            "-drive", "if=none,id=d0,format=raw,file=\(home)/disk.raw"]
                if agent { args += ["-chardev", "socket,id=qga0,path=\(home)/qga.sock,server=on,wait=off"] }
                let started = try Subprocess(qemu, args).run()
                try #require(started.status == 0, "\(started.stderrText)")
                pids.append(try #require(Int32(try cli.scratch.read("\(name)/qemu.pid").trimmingCharacters(in: .whitespacesAndNewlines))))
            }
        }

        /// The fake peer on `socket`, once it listens.
        func fake(_ kind: String, socket: String, mode: String) throws {
            guard let python = requireTool("python3") else { throw VMToolsError(.failure, nil, "no python3") }
            let script = try cli.scratch.writeScript("peer.py", HostileGuestAgentTests.peer, mode: 0o644)
            let ready = cli.scratch.url("ready-\(peers.count)")
            let p = Process()
            p.executableURL = URL(fileURLWithPath: python)
            p.arguments = [script, kind, socket, mode, ready]
            p.standardInput = FileHandle.nullDevice
            try p.run()
            peers.append(p)
            try #require(waitUntil(10) { FileManager.default.fileExists(atPath: ready) }, "the fake \(kind) does not listen")
        }

        deinit {
            for p in peers where p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
            for pid in pids {
                kill(pid, SIGKILL)
                _ = waitUntil(10) { QemuProcess.read(pid: pid) == nil }
            }
        }
    }

    /// The lines of `err` that report a bad answer, and whether there is
    /// exactly one, naming `home` and `peer`, and no other error.
    static func oneLine(_ err: String, home: String, peer: String) -> Bool {
        let errors = err.split(separator: "\n").filter { $0.contains("ERROR") }
        return errors.count == 1 && errors[0].contains("ERROR: \(home): \(peer) gave an answer vmtools cannot use: ")
    }

    @Test(.requires("qemu-system-x86_64", "python3"), arguments: agentModes)
    func aHostileGuestAgentIsOneLineAndTheOtherVMIsShown(_ mode: String) throws {
        let f = try Fixture(agent: true)
        try f.fake("agent", socket: f.bad + "/qga.sock", mode: mode)
        try f.fake("agent", socket: f.good + "/qga.sock", mode: "good")
        let peer = "the guest agent"

        let info = try #require(try f.cli.run("vminfo", ["-i", f.bad, f.good], environment: f.cli.environment, within: 60))
        #expect(info.status == 1, "\(mode): vminfo exited \(info.status)\(info.status > 128 ? " (a signal)" : "")\n\(info.err)")
        #expect(Self.oneLine(info.err, home: f.bad, peer: peer), "\(mode)\n\(info.err)")
        #expect(info.out.contains("Guest agent: gave an answer vmtools cannot use (reported on stderr)\n"), "\(mode)\n\(info.out)")
        #expect(info.out.contains("Guest addresses: eth0 10.0.2.15/24\n"), "\(mode)\n\(info.out)")
        #expect(info.out.contains("State: RUNNING (PID \(f.pids[1]))"), "\(mode)\n\(info.out)")

        let json = try #require(try f.cli.run("vminfo", ["-j", "-i", f.bad, f.good], environment: f.cli.environment, within: 60))
        #expect(json.status == 1 && Self.oneLine(json.err, home: f.bad, peer: peer), "\(mode): \(json.status)\n\(json.err)")
        let docs = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]], "\(json.out)")
        let states = docs.map { $0["state"] as? [String: Any] }
        #expect(states.map { $0?["guest_agent"] as? String } == ["bad_answer", "answering"], "\(mode)\n\(json.out)")
        #expect((states.last??["guest_addresses"] as? [[String: Any]])?.first?["address"] as? String == "10.0.2.15")

        let ps = try #require(try f.cli.run("vmps", ["-j", "-d", f.bad, f.good], environment: f.cli.environment, within: 60))
        #expect(ps.status == 1, "\(mode): vmps -j exited \(ps.status)\(ps.status > 128 ? " (a signal)" : "")\n\(ps.err)")
        #expect(Self.oneLine(ps.err, home: f.bad, peer: peer), "\(mode)\n\(ps.err)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(ps.out.utf8)) as? [[String: Any]], "\(ps.out)")
        let byPID = Dictionary(rows.map { ($0["pid"] as? Int ?? 0, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(byPID[Int(f.pids[0])]?["guest_addresses"] is NSNull, "\(mode)\n\(ps.out)")
        #expect((byPID[Int(f.pids[1])]?["guest_addresses"] as? [[String: Any]])?.first?["address"] as? String == "10.0.2.15", "\(mode)\n\(ps.out)")

        let table = try #require(try f.cli.run("vmps", ["-o", "nw", "-d", f.bad, f.good], environment: f.cli.environment, within: 60))
        #expect(table.status == 1 && Self.oneLine(table.err, home: f.bad, peer: peer), "\(mode): \(table.status)\n\(table.err)")
        #expect(table.out.contains("eth0 10.0.2.15/24"), "\(mode)\n\(table.out)")
    }

    @Test(.requires("qemu-system-x86_64", "python3"), arguments: qmpModes)
    func aHostileQMPMonitorIsOneLineAndTheOtherVMIsShown(_ mode: String) throws {
        let f = try Fixture(agent: false)
        try f.fake("qmp", socket: f.bad + "/qmp.sock", mode: mode)
        let peer = "QEMU's QMP monitor"

        let info = try #require(try f.cli.run("vminfo", ["-i", f.bad, f.good], environment: f.cli.environment, within: 60))
        #expect(info.status == 1, "\(mode): vminfo exited \(info.status)\(info.status > 128 ? " (a signal)" : "")\n\(info.err)")
        #expect(Self.oneLine(info.err, home: f.bad, peer: peer), "\(mode)\n\(info.err)")
        // The real QEMU's counters: zero bytes read.
        #expect(info.out.contains("Disk I/O: read 0.0 KB/s, write 0.0 KB/s\n"), "\(mode)\n\(info.out)")
        #expect(info.out.contains("Disk I/O: - (QEMU does not answer over QMP)\n"), "\(mode)\n\(info.out)")

        let ps = try #require(try f.cli.run("vmps", ["-j", "-o", "pi", "-d", f.bad, f.good], environment: f.cli.environment, within: 60))
        #expect(ps.status == 1, "\(mode): vmps -j exited \(ps.status)\(ps.status > 128 ? " (a signal)" : "")\n\(ps.err)")
        #expect(Self.oneLine(ps.err, home: f.bad, peer: peer), "\(mode)\n\(ps.err)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(ps.out.utf8)) as? [[String: Any]], "\(ps.out)")
        let byPID = Dictionary(rows.map { ($0["pid"] as? Int ?? 0, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(byPID[Int(f.pids[0])]?["disk_read_bytes_per_second"] is NSNull, "\(mode)\n\(ps.out)")
        #expect(byPID[Int(f.pids[1])]?["disk_read_bytes_per_second"] as? Int == 0, "\(mode)\n\(ps.out)")
    }

    /// `vmps -w 0.5` outside a terminal: JSON lines for both VMs refresh
    /// after refresh, the bad answers reported once, and the status after
    /// SIGTERM is 1 (a signal would be 128 + 15).
    @Test(.requires("qemu-system-x86_64", "python3"), arguments: [("agent", "prefix-1e300"), ("agent", "deep-array"), ("qmp", "rd-1e300")])
    func aWatchGoesOnAndReportsOnce(_ kind: String, _ mode: String) throws {
        let f = try Fixture(agent: kind == "agent")
        try f.fake(kind, socket: f.bad + (kind == "agent" ? "/qga.sock" : "/qmp.sock"), mode: mode)
        if kind == "agent" { try f.fake("agent", socket: f.good + "/qga.sock", mode: "good") }
        let out = f.cli.scratch.url("watch.out"), err = f.cli.scratch.url("watch.err")
        FileManager.default.createFile(atPath: out, contents: nil)
        FileManager.default.createFile(atPath: err, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: f.cli.bin + "/vmps")
        p.arguments = ["-w", "0.5", "-d", f.bad, f.good]
        p.environment = f.cli.environment
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() } }
        func lines(of pid: Int32) -> [[String: Any]] {
            ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }.filter { $0["pid"] as? Int == Int(pid) }
        }
        // Three refreshes of each VM: the watch went on after the bad answer.
        let refreshed = waitUntil(30) { lines(of: f.pids[0]).count >= 3 && lines(of: f.pids[1]).count >= 3 }
        #expect(refreshed, "\(mode): \((try? String(contentsOfFile: out, encoding: .utf8)) ?? "")\n\((try? String(contentsOfFile: err, encoding: .utf8)) ?? "")")
        kill(p.processIdentifier, SIGTERM)
        #expect(waitUntil(10) { !p.isRunning }, "vmps -w still runs after SIGTERM")
        p.waitUntilExit()
        #expect(p.terminationReason == .exit && p.terminationStatus == 1, "\(mode): \(p.terminationReason) \(p.terminationStatus)")
        let text = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
        #expect(Self.oneLine(text, home: f.bad, peer: kind == "agent" ? "the guest agent" : "QEMU's QMP monitor"), "\(mode)\n\(text)")
        if kind == "agent" {
            #expect((lines(of: f.pids[1]).last?["guest_addresses"] as? [[String: Any]])?.first?["address"] as? String == "10.0.2.15")
        } else {
            #expect(lines(of: f.pids[1]).last?["disk_read_bytes_per_second"] as? Int == 0)
        }
    }
}
