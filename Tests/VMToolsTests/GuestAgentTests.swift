import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// The guest agent (vm.settings(5), GUEST AGENT; vminfo(1); vmps(1)): the
/// sync-delimited handshake against a fake agent on a Unix socket, a silent
/// agent costing no more than the timeout, and vminfo/vmps of a real QEMU
/// whose agent socket the fake answers on.
@Suite struct GuestAgentTests {
    static let interfaces = #"""
        {"return": [{"name": "lo", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "127.0.0.1", "prefix": 8},
        {"ip-address-type": "ipv6", "ip-address": "::1", "prefix": 128}], "hardware-address": "00:00:00:00:00:00"},
        {"name": "eth0", "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "10.0.2.15", "prefix": 24},
        {"ip-address-type": "ipv6", "ip-address": "fec0::5054:ff:fe12:3456", "prefix": 64}], "hardware-address": "52:54:00:12:34:56"},
        {"name": "eth1", "hardware-address": "52:54:00:12:34:57"}]}
        """#.replacingOccurrences(of: "\n", with: " ")

    /// A qemu-guest-agent stand-in: answers `guest-sync-delimited` with a
    /// stale reply first and an earlier client's sync (as replies meant for
    /// an earlier client would be), then 0xFF and the id; answers `guest-network-get-interfaces` with
    /// `interfaces`. A silent one accepts and reads, never answers.
    final class FakeAgent: @unchecked Sendable {
        let fd: Int32
        let silent: Bool
        private let lock = NSLock()
        private var _requests: [String] = []
        var requests: [String] { lock.withLock { _requests } }

        init(path: String, silent: Bool = false) throws {
            self.silent = silent
            unlink(path)
            fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            try #require(path.utf8.count < 108, "socket path too long: \(path)")
            withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (k, b) in path.utf8.enumerated() { raw[k] = b } }
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            try #require(rc == 0 && listen(fd, 4) == 0, "cannot listen on \(path): errno \(errno)")
            let t = Thread { [self] in serve() }
            t.start()
        }

        /// Ends the accept loop; the serving thread closes the socket. Were
        /// it closed here, a thread not yet back in `accept` could accept on
        /// the same descriptor number reused by another test's agent (and,
        /// silent, starve that test's client).
        func stop() {
            shutdown(fd, Int32(SHUT_RDWR))
        }

        private func serve() {
            defer { close(fd) }
            while true {
                let c = accept(fd, nil, nil)
                if c < 0 { return }
                handle(c)
                close(c)
            }
        }

        private func reply(_ c: Int32, _ bytes: [UInt8]) {
            _ = bytes.withUnsafeBytes { send(c, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }

        private func handle(_ c: Int32) {
            var buffer: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = chunk.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
                if n <= 0 { return }
                buffer += chunk[0..<n].filter { $0 != 0xFF }
                while let nl = buffer.firstIndex(of: 10) {
                    let line = String(decoding: buffer[..<nl], as: UTF8.self)
                    buffer.removeFirst(nl + 1)
                    lock.withLock { _requests.append(line) }
                    if silent { continue }
                    if line.contains("guest-sync-delimited"), let r = line.range(of: #""id":"#) {
                        let id = line[r.upperBound...].prefix { $0.isNumber }
                        // A stale line, then an earlier client's delimited sync, then ours.
                        reply(c, Array("{\"return\": 4242}\n".utf8) + [0xFF] + Array("{\"return\": 7}\n".utf8)
                              + [0xFF] + Array("{\"return\": \(id)}\n".utf8))
                    } else if line.contains("guest-network-get-interfaces") {
                        reply(c, Array((GuestAgentTests.interfaces + "\n").utf8))
                    } else {
                        reply(c, Array(#"{"error": {"class": "CommandNotFound", "desc": "unknown"}}"#.utf8) + [10])
                    }
                }
            }
        }
    }

    @Test func theClientSyncsThenReadsTheInterfacesWithoutLoopback() throws {
        let s = Scratch()
        let path = s.url("qga.sock")
        let agent = try FakeAgent(path: path)
        defer { agent.stop() }
        let client = try GuestAgentClient(path: path, timeout: 10)
        let list = try client.interfaces()
        #expect(list.map(\.name) == ["eth0"])
        #expect(list.first?.addresses.map(\.description) == ["10.0.2.15/24", "fec0::5054:ff:fe12:3456/64"])
        #expect(agent.requests.first?.hasPrefix(#"{"execute":"guest-sync-delimited","arguments":{"id":"#) == true, "\(agent.requests)")
        #expect(agent.requests.last == #"{"execute":"guest-network-get-interfaces"}"#)
        let status = GuestAgentStatus.answering(list)
        #expect(status.addressesText == "eth0 10.0.2.15/24, fec0::5054:ff:fe12:3456/64")
        #expect(status.addressesJSON.serialized(pretty: false)
                == #"[{"interface":"eth0","family":"ipv4","address":"10.0.2.15","prefix":24},{"interface":"eth0","family":"ipv6","address":"fec0::5054:ff:fe12:3456","prefix":64}]"#)
    }

    @Test func aSilentAgentCostsNoMoreThanTheTimeout() throws {
        let s = Scratch()
        let path = s.url("qga.sock")
        let agent = try FakeAgent(path: path, silent: true)
        defer { agent.stop() }
        let start = Date()
        #expect(throws: VMToolsError.self) { _ = try GuestAgentClient(path: path, timeout: 0.5) }
        let took = Date().timeIntervalSince(start)
        #expect(took >= 0.4 && took < 3, "\(took) s")
        #expect(waitUntil(5) { agent.requests.contains { $0.contains("guest-sync-delimited") } }, "\(agent.requests)")
    }

    /// Several agents asked side by side under one deadline (vmps -j, vminfo
    /// of many VMs): three silent ones cost the timeout once, not three
    /// times, and the answering one, asked last, is still read.
    @Test func manyAgentsAreAskedAtOnce() throws {
        let s = Scratch()
        let silent = try (1...3).map { try FakeAgent(path: s.url("silent\($0).sock"), silent: true) }
        let answering = try FakeAgent(path: s.url("qga.sock"))
        defer { (silent + [answering]).forEach { $0.stop() } }
        let start = Date()
        let answers = GuestAgentClient.interfaces(of: (1...3).map { s.url("silent\($0).sock") } + [s.url("qga.sock"), s.url("none.sock")],
                                                  timeout: 0.6)
        let took = Date().timeIntervalSince(start)
        #expect(answers.map { $0?.map(\.name) } == [nil, nil, nil, ["eth0"], nil])
        #expect(took >= 0.5 && took < 1.5, "three silent agents one after the other would take 1.8 s: \(took) s")
        #expect(answering.requests.last == #"{"execute":"guest-network-get-interfaces"}"#, "\(answering.requests)")
    }

    /// The socket comes from QEMU's own command line: a VM started before
    /// the setting changed keeps what it started with.
    @Test func theSocketIsReadFromQEMUsCommandLine() {
        let with = QemuProcess(pid: 1, uid: 0, argv: ["qemu", "-pidfile", "/vms/a/qemu.pid", "-chardev", "socket,id=tpmchr,path=./tpm.sock",
                                                       "-chardev", "socket,id=qga0,path=./qga.sock,server=on,wait=off"], vszKB: 0, cpuPercent: 0)
        #expect(with.guestAgentSocket(home: "/vms/a") == "/vms/a/qga.sock")
        let without = QemuProcess(pid: 1, uid: 0, argv: ["qemu", "-pidfile", "/vms/a/qemu.pid"], vszKB: 0, cpuPercent: 0)
        #expect(without.guestAgentSocket(home: "/vms/a") == nil)
        #expect(without.guestAgent(home: "/vms/a") == .noChannel)
        #expect(VMInfoCommand.guestAgentLine(.noChannel) == "Guest agent: no agent channel (vm_guestagent_enable=yes adds one at the next start)")
        #expect(VMInfoCommand.guestAgentLine(.notAnswering) == "Guest agent: not answering (install qemu-guest-agent in the guest)")
    }

    /// vminfo and vmps -j of a running QEMU (`-machine none`): its agent
    /// socket is replaced by the fake's, so the commands meet an agent.
    @Test(.requires("qemu-system-x86_64")) func vminfoAndVmpsShowTheGuestsAddresses() throws {
        guard let qemu = requireTool("qemu-system-x86_64") else { return }
        let s = Scratch()
        try s.write("vm/vm.settings", "vm_name=vm\n")
        let home = s.url("vm")
        let socket = home + "/qga.sock"
        let started = try Subprocess(qemu, ["-machine", "none", "-nodefaults", "-display", "none", "-daemonize", "-pidfile", home + "/qemu.pid",
                                            "-chardev", "socket,id=qga0,path=\(socket),server=on,wait=off"]).run()
        try #require(started.status == 0, "\(started.stderrText)")
        let pid = try #require(Int32(try s.read("vm/qemu.pid").trimmingCharacters(in: .whitespacesAndNewlines)))
        defer {
            kill(pid, SIGKILL)
            _ = waitUntil(10) { QemuProcess.read(pid: pid) == nil }
        }
        // QEMU's own socket: nothing behind it answers.
        let start = Date()
        let silent = try CLI(s).run("vminfo", ["-i", home])
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(silent.out.contains("State: RUNNING (PID \(pid))\n"), "\(silent.out)\(silent.err)")
        #expect(silent.out.contains("Guest agent: not answering (install qemu-guest-agent in the guest)\n"), "\(silent.out)")

        let agent = try FakeAgent(path: socket)
        defer { agent.stop() }
        let info = try CLI(s).run("vminfo", ["-i", home])
        #expect(info.out.contains("Guest addresses: eth0 10.0.2.15/24, fec0::5054:ff:fe12:3456/64\n"), "\(info.out)\(info.err)")
        let json = try CLI(s).run("vminfo", ["-j", home])
        let state = try #require((try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]])?.first?["state"] as? [String: Any])
        #expect(state["guest_agent"] as? String == "answering")
        let addresses = state["guest_addresses"] as? [[String: Any]]
        #expect(addresses?.compactMap { $0["address"] as? String } == ["10.0.2.15", "fec0::5054:ff:fe12:3456"], "\(json.out)")
        #expect(addresses?.first?["interface"] as? String == "eth0")
        #expect(addresses?.first?["prefix"] as? Int == 24)

        let ps = try CLI(s).run("vmps", ["-j", "-d", home])
        let row = try #require((try JSONSerialization.jsonObject(with: Data(ps.out.utf8)) as? [[String: Any]])?.first, "\(ps.out)\(ps.err)")
        #expect((row["guest_addresses"] as? [[String: Any]])?.first?["address"] as? String == "10.0.2.15", "\(ps.out)")
        let column = try CLI(s).run("vmps", ["-o", "pw", "-d", home])
        #expect(column.out.contains("GUEST ADDRESSES"), "\(column.out)")
        #expect(column.out.contains("eth0 10.0.2.15/24, fec0::5054:ff:fe12:3456/64"), "\(column.out)")
        // The default fields ask no agent.
        let before = agent.requests.count
        #expect(try CLI(s).run("vmps", ["-d", home]).status == 0)
        #expect(agent.requests.count == before)
    }
}
