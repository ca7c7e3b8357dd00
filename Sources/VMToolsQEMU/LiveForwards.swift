import VMToolsCore

/// A port forward as the running QEMU holds it: the real host port, which
/// the kernel chose when the setting said 0 (vm.settings(5)).
public struct LiveForward: Equatable, Sendable {
    /// The interface's number (`nd2` → `2`).
    public var nic: String
    public var proto: String
    public var address: String
    public var hostPort: Int
    public var guestPort: Int

    public init(nic: String, proto: String, address: String, hostPort: Int, guestPort: Int) {
        self.nic = nic
        self.proto = proto
        self.address = address
        self.hostPort = hostPort
        self.guestPort = guestPort
    }

    /// `tcp:127.0.0.1:34313->22`.
    public var description: String { "\(proto):\(address):\(hostPort)->\(guestPort)" }

    public var json: JSON {
        .object([("nic", .string(nic)), ("protocol", .string(proto)), ("host_address", .string(address)),
                 ("host_port", .number(Double(hostPort))), ("guest_port", .number(Double(guestPort)))])
    }

    /// A port number, 0 to 65535: the text may be another user's process's (vmps -a).
    static func port(_ s: Substring) -> Int? { Int(s).flatMap { (0...65535).contains($0) ? $0 : nil } }

    /// Where a client on this host connects: a forward on every address is reached on loopback.
    public var connectAddress: String { address == "0.0.0.0" ? "127.0.0.1" : address }

    /// The forwards in HMP's `info usernet` (QEMU 7.2):
    /// `Hub -1 (nd1):` then rows `TCP[HOST_FORWARD]  12  127.0.0.1 34313  10.0.2.15  22  0  0`.
    public static func parse(usernet text: String) -> [LiveForward] {
        var nic = ""
        var list: [LiveForward] = []
        for raw in text.split(whereSeparator: \.isNewline) { // "\r\n" is one Character
            let line = raw.drop { $0 == " " || $0 == "\t" }
            if line.hasPrefix("Hub "), let open = line.lastIndex(of: "("), let close = line.lastIndex(of: ")"), open < close {
                let id = line[line.index(after: open)..<close]
                nic = id.hasPrefix("nd") ? String(id.dropFirst(2)) : String(id)
                continue
            }
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 6, f[0].hasSuffix("[HOST_FORWARD]"), let host = port(f[3]), let guest = port(f[5]) else { continue }
            let proto = f[0].prefix { $0 != "[" }.lowercased()
            let address = f[2] == "*" ? "0.0.0.0" : String(f[2])
            list.append(LiveForward(nic: nic, proto: proto, address: address, hostPort: host, guestPort: guest))
        }
        return list
    }
}

extension LiveForward {
    /// Where the executor records a passt interface's forwards (vmup(1)):
    /// beside its socket, since passt cannot be asked and QEMU does not know.
    public static func passtForwardsFile(socket: String) -> String {
        (socket.hasSuffix(".sock") ? String(socket.dropLast(5)) : socket) + ".forwards"
    }

    /// `tcp:127.0.0.1:34313->22` back into a forward of `nic`.
    public static func parse(_ line: Substring, nic: String) -> LiveForward? {
        let halves = line.split(separator: "->")
        let left = halves.first?.split(separator: ":") ?? []
        guard halves.count == 2, left.count == 3, ["tcp", "udp"].contains(left[0]),
              let host = port(left[2]), let guest = port(halves[1]) else { return nil }
        return LiveForward(nic: nic, proto: String(left[0]), address: String(left[1]), hostPort: host, guestPort: guest)
    }

    /// One line per forward, as `description` writes it.
    public static func readPasstFile(_ path: String, nic: String) -> [LiveForward]? {
        guard let text = (try? FileSystem.readTextIfExists(path)) ?? nil else { return nil }
        return text.split(separator: "\n").compactMap { parse($0, nic: nic) }
    }
}

extension QMPClient {
    /// The forwards of every user-mode interface, or nil when QEMU does not answer.
    public static func forwards(socket qmp: String, timeout: Double = 2) -> [LiveForward]? {
        guard FileSystem.exists(qmp), let client = try? QMPClient(path: qmp, timeout: timeout),
              let r = try? client.execute("human-monitor-command", arguments: [("command-line", .string("info usernet"))], timeout: timeout),
              let text = r.stringValue else { return nil }
        return LiveForward.parse(usernet: text)
    }
}

extension QemuProcess {
    /// True when argv has a port forward to ask about (slirp's or passt's).
    public var hasForwards: Bool { argv.contains { $0.containsBytes("hostfwd=") } || !passtSockets.isEmpty }

    /// Each passt interface's number and socket: `-netdev stream,…,addr.path=…/passt-ndN.sock,id=ndN`.
    var passtSockets: [(nic: String, socket: String)] {
        argv.indices.dropLast().compactMap { i in
            guard argv[i] == "-netdev", argv[i + 1].hasPrefix("stream,") else { return nil }
            let options = Self.splitOptions(argv[i + 1])
            guard let path = options.first(where: { $0.hasPrefix("addr.path=") })?.dropFirst(10),
                  let id = options.first(where: { $0.hasPrefix("id=nd") })?.dropFirst(5),
                  path.hasSuffix("/passt-nd\(id).sock") else { return nil }
            return (String(id), String(path))
        }
    }

    /// The forwards QEMU holds, asked over QMP only when it has some, and
    /// passt's, as the executor recorded them; nil when QEMU has some but
    /// does not answer, or a record is missing.
    public func liveForwards(home: String?) -> [LiveForward]? {
        guard hasForwards else { return [] }
        var list: [LiveForward] = []
        if argv.contains(where: { $0.contains("hostfwd=") }) {
            guard let qmp = qmpSocket(home: home), let forwards = QMPClient.forwards(socket: qmp, timeout: 1) else { return nil }
            list = forwards
        }
        for (nic, socket) in passtSockets {
            guard let forwards = LiveForward.readPasstFile(LiveForward.passtForwardsFile(socket: socket), nic: nic) else { return nil }
            list += forwards
        }
        return list
    }
}
