import VMToolsCore

#if canImport(Glibc)
import Glibc
#endif

/// QEMU's human monitor (HMP), as `vmmon` and the tests use it.
public final class HumanMonitor {
    let socket: UnixSocket
    public private(set) var banner: String

    public init(path: String, timeout: Double = 10) throws {
        socket = try UnixSocket(path: path)
        banner = try socket.read(until: "(qemu) ", timeout: timeout)
    }

    public func send(_ line: String) throws { try socket.send(line + "\n") }

    /// Runs one command and returns its output (the echoed command removed).
    public func execute(_ command: String, timeout: Double = 10) throws -> String {
        try socket.send(command + "\n")
        let raw = try socket.read(until: "(qemu) ", timeout: timeout)
        // HMP echoes the line with terminal redraw sequences; the output follows the first CRLF.
        // Work on scalars: "\r\n" is a single Character.
        let scalars = raw.unicodeScalars
        guard let nl = scalars.firstIndex(of: "\n") else { return "" }
        return String(String.UnicodeScalarView(scalars[scalars.index(after: nl)...].filter { $0 != "\r" }))
    }
}
