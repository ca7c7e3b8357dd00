import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// `vmps -w` (vmps(1) WATCH MODE): a view redrawn in a terminal (here a
/// pseudo-terminal the test opens), JSON lines elsewhere. The VM is a
/// stand-in process (FakeQemu): the watch only reads /proc.
@Suite(.serialized) struct VMPsWatchTests {
    /// `vmps ARGS` started in the background with stdin and stdout on `fd`
    /// (a pty's slave or a file).
    static func start(_ cli: CLI, _ args: [String], stdin: FileHandle, stdout: FileHandle) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: cli.bin + "/vmps")
        p.arguments = args
        p.environment = cli.environment
        p.standardInput = stdin
        p.standardOutput = stdout
        p.standardError = stdout
        try p.run()
        return p
    }

    /// Stopped and reaped if a test failed half-way.
    static func stop(_ p: Process) {
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
    }

    /// A pseudo-terminal: the master for the test, the slave for vmps.
    static func openPTY() throws -> (master: Int32, slave: Int32) {
        // /dev/ptmx by hand: Glibc's module does not export posix_openpt.
        let master = open("/dev/ptmx", O_RDWR | O_NOCTTY)
        var unlock: Int32 = 0, number: UInt32 = 0
        guard master >= 0, ioctl(master, 0x4004_5431 /* TIOCSPTLCK */, &unlock) == 0, ioctl(master, 0x8004_5430 /* TIOCGPTN */, &number) == 0 else {
            throw VMToolsError(.failure, nil, "no pseudo-terminal")
        }
        let slave = open("/dev/pts/\(number)", O_RDWR | O_NOCTTY)
        guard slave >= 0 else { throw VMToolsError(.failure, nil, "cannot open the pty slave") }
        var size = winsize(ws_row: 24, ws_col: 100, ws_xpixel: 0, ws_ypixel: 0)
        _ = ioctl(slave, UInt(TIOCSWINSZ), &size)
        _ = fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK)
        return (master, slave)
    }

    /// What vmps wrote so far (appended to `into`); false once it is gone.
    static func drain(_ master: Int32, into text: inout [UInt8]) {
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(master, &buf, buf.count)
            if n <= 0 { return }
            text += buf[..<n]
        }
    }

    static func count(_ needle: String, in bytes: [UInt8]) -> Int {
        String(decoding: bytes, as: UTF8.self).components(separatedBy: needle).count - 1
    }

    func watchInATerminal(stopWith stop: (Process, Int32) -> Void) throws {
        let s = Scratch()
        let cli = try CLI(s)
        let vm = try FakeQemu("sleep 300; :", ["-m", "1G"])
        let (master, slave) = try Self.openPTY()
        defer { close(master) }
        let handle = FileHandle(fileDescriptor: slave, closeOnDealloc: true)
        let p = try Self.start(cli, ["-w", "0.3", "-p", "\(vm.pid)"], stdin: handle, stdout: handle)
        defer { Self.stop(p) }
        try handle.close()
        var out: [UInt8] = []
        let refreshed = waitUntil(30) {
            Self.drain(master, into: &out)
            return Self.count(VMPsWatch.clearScreen, in: out) >= 2
        }
        #expect(refreshed, "two refreshes: \(String(decoding: out, as: UTF8.self).debugDescription)")
        let text = String(decoding: out, as: UTF8.self)
        #expect(text.hasPrefix(VMPsWatch.enterScreen), "\(text.debugDescription)")
        #expect(text.contains("PID") && text.contains("CPU NOW %") && text.contains("\(vm.pid)") && text.contains("1024"), "\(text.debugDescription)")
        stop(p, master)
        #expect(waitUntil(20) { !p.isRunning }, "vmps -w did not end")
        p.waitUntilExit()
        #expect(p.terminationStatus == 0 && p.terminationReason == .exit)
        Self.drain(master, into: &out)
        let all = String(decoding: out, as: UTF8.self)
        #expect(all.hasSuffix(VMPsWatch.leaveScreen), "the terminal is restored last: \(all.suffix(80).debugDescription)")
        withExtendedLifetime(vm) {}
    }

    @Test func aTerminalViewRefreshesAndEndsOnQ() throws {
        try watchInATerminal { _, master in
            var q = UInt8(ascii: "q")
            _ = write(master, &q, 1)
        }
    }

    @Test func aTerminalViewEndsOnSIGINT() throws {
        try watchInATerminal { p, _ in kill(p.processIdentifier, SIGINT) }
    }

    @Test func outsideATerminalItPrintsJSONLines() throws {
        let s = Scratch()
        let cli = try CLI(s)
        let vm = try FakeQemu("sleep 300; :", ["-smp", "2"])
        let path = s.url("out.jsonl")
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let file = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        let p = try Self.start(cli, ["-w", "0.2", "-p", "\(vm.pid)"], stdin: FileHandle.nullDevice, stdout: file)
        defer { Self.stop(p) }
        var lines: [String] = []
        let two = waitUntil(30) {
            lines = textIfPresent(path).split(separator: "\n").map(String.init)
            return lines.count >= 3
        }
        #expect(two, "\(lines)")
        kill(p.processIdentifier, SIGTERM)
        #expect(waitUntil(20) { !p.isRunning })
        p.waitUntilExit()
        #expect(p.terminationStatus == 0 && p.terminationReason == .exit)
        lines = textIfPresent(path).split(separator: "\n").map(String.init)
        var times: Set<Double> = []
        for line in lines {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
            #expect(o["pid"] as? Int == Int(vm.pid))
            #expect(o["vcpus"] as? Int == 2)
            #expect(o["cpu_now_percent"] is Double, "\(line)")
            for key in ["time", "rss_kb", "ram_mb", "uptime_seconds", "disk_read_bytes_per_second", "disk_write_bytes_per_second",
                        "net_rx_bytes_per_second", "net_tx_bytes_per_second"] {
                #expect(o.keys.contains(key), "\(key): \(line)")
            }
            if let t = o["time"] as? Double { times.insert(t) }
        }
        // One line per VM per interval, each interval its own time.
        #expect(lines.count >= 3 && times.count == lines.count, "\(lines)")
        #expect(!textIfPresent(path).contains("\u{1B}"), "no terminal sequences in JSON lines")
        withExtendedLifetime(vm) {}
    }

    /// `vmps -w` without a number: every 2 s (the first after the 0.5 s sample).
    @Test func aBareWWatchesEveryTwoSeconds() throws {
        let s = Scratch()
        let cli = try CLI(s)
        let vm = try FakeQemu("sleep 300; :", [])
        let path = s.url("out.jsonl")
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let file = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        let p = try Self.start(cli, ["-w", "-p", "\(vm.pid)"], stdin: FileHandle.nullDevice, stdout: file)
        defer { Self.stop(p) }
        var times: [Double] = []
        let two = waitUntil(30) {
            times = textIfPresent(path).split(separator: "\n").compactMap {
                (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["time"] as? Double
            }
            return times.count >= 2
        }
        #expect(two, "\(textIfPresent(path))")
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        if times.count >= 2 { #expect(times[1] - times[0] >= 1.5 && times[1] - times[0] < 10, "\(times)") }
        withExtendedLifetime(vm) {}
    }
}
