import VMToolsCore

#if canImport(Glibc)
import Glibc
#endif

/// A connected Unix stream socket with deadline-bounded reads.
///
/// Socket paths are limited to ~107 bytes, and VM homes can be deeper than
/// that; connecting through `/proc/self/fd/<dirfd>/<name>` keeps the path
/// short whatever the home's depth.
public final class UnixSocket {
    private var fd: Int32
    private var buffer: [UInt8] = []

    public init(path: String) throws {
        let dir = path.deletingLastPathComponent
        let name = path.lastPathComponent
        let dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dirfd >= 0 else { throw VMToolsError(.failure, path, "cannot open the socket's directory: \(FileSystem.errnoMessage())") }
        defer { close(dirfd) }
        var short = "/proc/self/fd/\(dirfd)/\(name)"
        if short.utf8.count > 107 { short = path }
        guard short.utf8.count <= 107 else { throw VMToolsError(.failure, path, "socket name too long") }
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw VMToolsError(.failure, path, "cannot create a socket: \(FileSystem.errnoMessage())") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (k, b) in short.utf8.enumerated() { raw[k] = b }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            close(fd)
            fd = -1
            throw VMToolsError(.failure, path, "cannot connect: \(FileSystem.errnoMessage(e))")
        }
    }

    deinit { if fd >= 0 { close(fd) } }

    public func send(_ text: String) throws { try send(bytes: Array(text.utf8)) }

    public func send(bytes: [UInt8]) throws {
        var bytes = bytes
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw VMToolsError(.failure, nil, "monitor connection lost: \(FileSystem.errnoMessage())")
            }
            bytes.removeFirst(n)
        }
    }

    /// Whether something is there to read (buffered, or arriving within
    /// `timeout` seconds): a wait for QMP events without a blocking read.
    public func hasInput(within timeout: Double) -> Bool {
        if !buffer.isEmpty { return true }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let rc = poll(&p, 1, Int32(min(max(0, timeout * 1000), 1e9)))
        return rc > 0
    }

    /// Reads until `terminator` appears or the deadline passes; returns the
    /// text before it (and consumes the terminator).
    public func read(until terminator: String, timeout: Double) throws -> String {
        String(decoding: try read(untilBytes: Array(terminator.utf8), timeout: timeout), as: UTF8.self)
    }

    /// As `read(until:timeout:)`, for a terminator that is not text (the
    /// guest agent's 0xFF).
    public func read(untilBytes t: [UInt8], timeout: Double) throws -> [UInt8] {
        let deadline = SystemClock.now() + timeout
        // The peer may be a guest or another user's process: an answer
        // without end must not grow forever, nor keep the read going past
        // the deadline by never pausing.
        var searched = 0, lateReads = 0
        while true {
            if let r = find(t, from: searched) {
                let bytes = Array(buffer[..<r])
                buffer.removeFirst(r + t.count)
                return bytes
            }
            searched = max(0, buffer.count - t.count + 1)
            guard buffer.count <= Self.maximumAnswer else {
                throw VMToolsError(.failure, nil, "\(BadAnswer.prefix) longer than \(Self.maximumAnswer >> 20) MiB")
            }
            // Past the deadline, what has already arrived is still read.
            let left = deadline - SystemClock.now()
            if left <= 0 {
                lateReads += 1
                if lateReads > 64 { throw VMToolsError(.failure, nil, "\(BadAnswer.prefix) that does not end within \(Int(max(0, timeout))) s") }
            }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let rc = poll(&p, 1, left > 0 ? Int32(min(max(1, left * 1000), 1e9)) : 0)
            if rc < 0 && errno == EINTR { continue }
            if rc <= 0 {
                if left <= 0 { throw VMToolsError(.failure, nil, "no answer from QEMU within \(Int(max(0, timeout))) s") }
                continue
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { throw VMToolsError(.failure, nil, "QEMU closed the monitor connection") }
            if n < 0 {
                if errno == EINTR { continue }
                throw VMToolsError(.failure, nil, "monitor connection lost: \(FileSystem.errnoMessage())")
            }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }

    /// The longest answer read: QMP's and the agent's are kilobytes.
    static let maximumAnswer = 8 << 20

    /// Searching from where the last search ended: rescanning the whole
    /// buffer per chunk would make a long answer cost its square. memchr:
    /// a byte loop cost a debug build more than the agent's one second.
    private func find(_ t: [UInt8], from start: Int) -> Int? {
        guard !t.isEmpty, buffer.count >= t.count, start <= buffer.count - t.count else { return nil }
        return buffer.withUnsafeBufferPointer { b -> Int? in
            guard let base = b.baseAddress else { return nil }
            let last = b.count - t.count
            var i = start
            while i <= last {
                guard let hit = memchr(base + i, Int32(t[0]), last - i + 1) else { return nil }
                let k = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                if memcmp(base + k, t, t.count) == 0 { return k }
                i = k + 1
            }
            return nil
        }
    }
}
