import VMToolsCore

/// qemu-guest-agent on the VM's `qga.sock` (vm.settings(5), GUEST AGENT):
/// newline-delimited JSON like QMP, but without a greeting, and the other
/// end may be a guest that is not listening yet, or a reply meant for an
/// earlier client. So every session starts with `guest-sync-delimited`: a
/// 0xFF resets the agent's parser, and the agent answers 0xFF then the id
/// we chose; whatever came before is stale.
public final class GuestAgentClient {
    let socket: UnixSocket
    let deadline: Double

    /// Connects and synchronises; the whole session (this and the requests
    /// after it) must end within `timeout` seconds, so a guest without an
    /// agent costs vminfo and vmps no more than that.
    public convenience init(path: String, timeout: Double = 1) throws {
        try self.init(starting: path, deadline: SystemClock.now() + timeout)
        try synchronise()
    }

    let id: Int

    /// Connected and the sync sent, its answer not yet read: `interfaces(of:)`
    /// starts many sessions before waiting on any.
    init(starting path: String, deadline: Double) throws {
        self.deadline = deadline
        socket = try UnixSocket(path: path)
        id = Int(try SystemRandom.bytes(4).reduce(0) { $0 << 8 | UInt32($1) } & 0x7FFF_FFFF)
        try socket.send(bytes: [0xFF])
        try socket.send(#"{"execute":"guest-sync-delimited","arguments":{"id":\#(id)}}"# + "\n")
    }

    /// Reads until the agent's answer to our sync; what came before is stale.
    func synchronise() throws {
        do {
            while true {
                _ = try socket.read(untilBytes: [0xFF], timeout: left())
                let line = try socket.read(until: "\n", timeout: left())
                if (try? JSON.parse(line))?["return"]?.integerValue == id { return }
            }
        } catch {
            throw VMToolsError(.failure, nil, "the guest agent does not answer")
        }
    }

    /// The interfaces of several guests, asked side by side: each agent is
    /// sent its sync and the request (which it answers in order) before any
    /// answer is read, under one deadline, so any number of silent agents
    /// cost `timeout` once. nil where an agent does not answer.
    public static func interfaces(of paths: [String], timeout: Double = 1) -> [[GuestInterface]?] {
        statuses(of: paths, timeout: timeout).map { if case .answering(let list) = $0 { list } else { nil } }
    }

    /// As `interfaces(of:)`, telling a silent agent from one whose answer
    /// cannot be used (`BadAnswer`).
    static func statuses(of paths: [String], timeout: Double = 1) -> [GuestAgentStatus] {
        let deadline = SystemClock.now() + timeout
        let clients: [GuestAgentClient?] = paths.map { p in
            guard let c = try? GuestAgentClient(starting: p, deadline: deadline),
                  (try? c.send("guest-network-get-interfaces")) != nil else { return nil }
            return c
        }
        return clients.map { c in
            guard let c, (try? c.synchronise()) != nil else { return .notAnswering }
            do {
                return .answering(try GuestInterface.parse(try c.reply(to: "guest-network-get-interfaces")))
            } catch let bad as BadAnswer {
                return .badAnswer(bad)
            } catch {
                return .notAnswering
            }
        }
    }

    /// Seconds to the deadline; past it, a read still takes what has
    /// arrived (a session started with others may be read last).
    private func left() -> Double { deadline - SystemClock.now() }

    /// Runs a command and returns its `return` value.
    public func execute(_ command: String) throws -> JSON {
        try send(command)
        return try reply(to: command)
    }

    func send(_ command: String) throws {
        try socket.send(JSON.object([("execute", .string(command))]).serialized(pretty: false) + "\n")
    }

    func reply(to command: String) throws -> JSON {
        while true {
            let line: String
            do { line = try socket.read(until: "\n", timeout: left()) } catch let e as VMToolsError {
                throw BadAnswer(.guestAgent, e) ?? e
            }
            // After the sync nothing stale is left: a line that is not JSON (or nests too deep) is the agent's answer.
            guard let reply = try? JSON.parse(line) else { throw BadAnswer(.guestAgent, "\(BadAnswer.prefix) to \(command) that is not JSON") }
            if let r = reply["return"] { return r }
            if let e = reply["error"] {
                throw VMToolsError(.failure, nil, "the guest agent refused \(command): \(e["desc"]?.stringValue ?? "error")")
            }
        }
    }

    /// `guest-network-get-interfaces`, loopback addresses left out.
    public func interfaces() throws -> [GuestInterface] {
        try GuestInterface.parse(try execute("guest-network-get-interfaces"))
    }
}

/// One network interface of the guest and its addresses, as its agent reports them.
public struct GuestInterface: Equatable, Sendable {
    public struct Address: Equatable, Sendable {
        /// `ipv4` or `ipv6`.
        public var family: String
        public var address: String
        public var prefix: Int?

        /// `10.0.2.15/24`.
        public var description: String { address + (prefix.map { "/\($0)" } ?? "") }

        public var isLoopback: Bool { address.hasPrefix("127.") || address == "::1" }
    }

    public var name: String
    public var addresses: [Address]

    /// The agent's interface list; loopback addresses, and interfaces left
    /// without any, are dropped. The guest writes this answer: a prefix is
    /// a number from 0 to 128, an address fits an IPv6 one, a name a line.
    public static func parse(_ reply: JSON) throws(BadAnswer) -> [GuestInterface] {
        guard let list = reply.arrayValue else { throw BadAnswer(.guestAgent, "interfaces that are not a list") }
        var interfaces: [GuestInterface] = []
        for i in list {
            guard let name = i["name"]?.stringValue else { continue }
            guard name.utf8.count <= 256 else { throw BadAnswer(.guestAgent, "an interface name of \(name.utf8.count) bytes") }
            var addresses: [Address] = []
            for a in i["ip-addresses"]?.arrayValue ?? [] {
                guard let ip = a["ip-address"]?.stringValue else { continue }
                guard ip.utf8.count <= 64 else { throw BadAnswer(.guestAgent, "an address of \(ip.utf8.count) bytes") }
                var prefix: Int?
                if let p = a["prefix"], p != .null {
                    guard let n = p.integerValue, (0...128).contains(n) else {
                        throw BadAnswer(.guestAgent, "prefix \(BadAnswer.quote(p)) of \(ip) is not a prefix length")
                    }
                    prefix = n
                }
                let address = Address(family: a["ip-address-type"]?.stringValue ?? "", address: ip, prefix: prefix)
                if !address.isLoopback { addresses.append(address) }
            }
            if !addresses.isEmpty { interfaces.append(GuestInterface(name: name, addresses: addresses)) }
        }
        return interfaces
    }
}

/// What the guest agent of a running VM says, for vminfo and vmps.
public enum GuestAgentStatus: Equatable, Sendable {
    /// QEMU was started without the channel.
    case noChannel
    /// The channel is there, but nothing answered in time.
    case notAnswering
    case answering([GuestInterface])
    /// It answered something that cannot be used; reported on stderr.
    case badAnswer(BadAnswer)

    /// `guest_agent` of vminfo -j.
    public var jsonName: String {
        switch self {
        case .noChannel: "no_channel"
        case .notAnswering: "not_answering"
        case .answering: "answering"
        case .badAnswer: "bad_answer"
        }
    }

    /// `guest_addresses` of vminfo -j and vmps -j: null unless the agent answered.
    public var addressesJSON: JSON {
        guard case .answering(let list) = self else { return .null }
        return .array(list.flatMap { i in
            i.addresses.map { a in
                .object([("interface", .string(i.name)), ("family", .string(a.family)), ("address", .string(a.address)),
                         ("prefix", a.prefix.map { .number(Double($0)) } ?? .null)])
            }
        })
    }

    /// `eth0 10.0.2.15/24, fe80::5054:ff:fe12:3456/64; eth1 …`.
    public var addressesText: String {
        guard case .answering(let list) = self else { return "" }
        return list.map { i in i.name + " " + i.addresses.map(\.description).joined(separator: ", ") }.joined(separator: "; ")
    }
}

extension QemuProcess {
    /// The guest agent's socket, from the `-chardev socket,id=qga0,path=…`
    /// the guestagent module adds; nil when QEMU has none.
    public func guestAgentSocket(home: String?) -> String? {
        for (k, a) in argv.enumerated() where a == "-chardev" && k + 1 < argv.count {
            let opts = Self.splitOptions(argv[k + 1])
            guard opts.first == "socket", opts.contains("id=qga0"),
                  let path = opts.first(where: { $0.hasPrefix("path=") }) else { continue }
            return runPath(String(path.dropFirst(5)), home: home)
        }
        return nil
    }

    /// What the guest agent says of the guest's addresses: the answer
    /// `askingGuestAgents` kept, else asked now, within `timeout` seconds.
    public func guestAgent(home: String?, timeout: Double = 1) -> GuestAgentStatus {
        if let guestAgentStatus { return guestAgentStatus }
        return Self.askingGuestAgents([self], homes: [home], timeout: timeout)[0].guestAgentStatus ?? .noChannel
    }

    /// The processes with their agents' answers, all asked side by side
    /// (`GuestAgentClient.interfaces(of:)`): VMs without an answering agent
    /// cost `timeout` once, not each.
    public static func askingGuestAgents(_ processes: [QemuProcess], homes: [String?], timeout: Double = 1) -> [QemuProcess] {
        let sockets = zip(processes, homes).map { $0.guestAgentSocket(home: $1) }
        let answers = GuestAgentClient.statuses(of: sockets.compactMap { $0 }, timeout: timeout)
        var next = answers.makeIterator()
        return zip(processes, sockets).map { p, socket in
            var p = p
            p.guestAgentStatus = socket == nil ? .noChannel : next.next() ?? .notAnswering
            return p
        }
    }
}
