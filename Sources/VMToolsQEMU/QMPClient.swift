import VMToolsCore

/// QEMU's machine protocol (QMP) on the VM's `qmp.sock`: what vmtools uses to
/// control a VM. Newline-delimited JSON.
public final class QMPClient {
    let socket: UnixSocket

    public convenience init(path: String, timeout: Double = 5) throws {
        self.init(connected: try UnixSocket(path: path))
        try greet(timeout: timeout, path: path)
        _ = try reply(to: "qmp_capabilities", timeout: timeout)
    }

    /// Connected, not yet greeted: `openAll` greets many QEMUs side by side.
    init(connected socket: UnixSocket) {
        self.socket = socket
    }

    /// Reads QEMU's greeting and sends `qmp_capabilities` (its reply still to read).
    func greet(timeout: Double, path: String? = nil) throws {
        let greeting = try socket.read(until: "\n", timeout: timeout)
        guard (try? JSON.parse(greeting))?["QMP"] != nil else {
            throw VMToolsError(.failure, path, "not a QMP socket")
        }
        try send("qmp_capabilities")
    }

    /// Connections to several QEMUs, made side by side: all connected, then
    /// each greeting read (QEMU sent them meanwhile) and answered, then each
    /// answer read; so n QEMUs cost about one round trip, not n. nil where
    /// a path is nil or nobody answers.
    static func openAll(_ paths: [String?], timeout: Double = 1) -> [QMPClient?] {
        var clients: [QMPClient?] = paths.map { p in
            guard let p, FileSystem.exists(p), let s = try? UnixSocket(path: p) else { return nil }
            return QMPClient(connected: s)
        }
        for k in clients.indices where (try? clients[k]?.greet(timeout: timeout)) == nil { clients[k] = nil }
        for k in clients.indices where (try? clients[k]?.reply(to: "qmp_capabilities", timeout: timeout)) == nil { clients[k] = nil }
        return clients
    }

    /// Runs a command; events that arrive meanwhile are skipped.
    @discardableResult
    public func execute(_ command: String, arguments: [(String, JSON)]? = nil, timeout: Double = 5) throws -> JSON {
        try send(command, arguments: arguments)
        return try reply(to: command, timeout: timeout)
    }

    /// Sends a command without waiting: with `reply(to:)`, several QEMUs
    /// can be asked at once and answer side by side.
    public func send(_ command: String, arguments: [(String, JSON)]? = nil) throws {
        var request: [(String, JSON)] = [("execute", .string(command))]
        if let arguments { request.append(("arguments", .object(arguments))) }
        try socket.send(JSON.object(request).serialized(pretty: false) + "\n")
    }

    /// The reply to the command sent last; events are skipped.
    public func reply(to command: String, timeout: Double = 5) throws -> JSON {
        let deadline = SystemClock.now() + timeout
        while true {
            let line = try socket.read(until: "\n", timeout: max(0.1, deadline - SystemClock.now()))
            // QEMU writes only JSON; under vmps -a the socket may be another user's.
            guard let reply = try? JSON.parse(line) else { throw VMToolsError(.failure, nil, "\(BadAnswer.prefix) to \(command) that is not JSON") }
            if let r = reply["return"] { return r }
            if let e = reply["error"] {
                throw VMToolsError(.failure, nil, "QEMU refused \(command): \(e["desc"]?.stringValue ?? "error")")
            }
        }
    }
}

extension QMPClient {
    /// Waits up to `timeout` seconds for QEMU to say anything (an event):
    /// reads one line when it does; nil when nothing came. A caller polls
    /// a state with a command, then waits here instead of sleeping.
    public func awaitEvent(timeout: Double) throws -> JSON? {
        guard socket.hasInput(within: timeout) else { return nil }
        let line = try socket.read(until: "\n", timeout: 5)
        guard let event = try? JSON.parse(line) else { throw VMToolsError(.failure, nil, "\(BadAnswer.prefix) that is not JSON") }
        return event
    }
}

extension QMPClient {
    /// `vnc://host:port` from QMP `query-vnc`, or nil.
    public static func vncURL(socket qmp: String, timeout: Double = 2) -> String? {
        guard FileSystem.exists(qmp), let client = try? QMPClient(path: qmp, timeout: timeout),
              let r = try? client.execute("query-vnc", timeout: timeout),
              let host = r["host"]?.stringValue, let port = r["service"]?.stringValue else { return nil }
        return "vnc://\(host.contains(":") ? "[\(host)]" : host):\(port)"
    }
}
