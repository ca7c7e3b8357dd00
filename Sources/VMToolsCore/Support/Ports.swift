#if canImport(Glibc)
import Glibc
#endif

/// Host ports a start chooses itself (Docs/ARCHITECTURE.md, "The launch
/// pipeline"): the first free one from a lowest (SPICE has no `to=`), or the
/// one the kernel offers (a forward of port 0 that passt serves).
package enum Ports {
    /// An address as `bind` takes it.
    package struct Address {
        package var family: Int32
        package var bytes: [UInt8]
    }

    /// The first address a host name or literal stands for.
    package static func resolve(_ host: String) -> Address? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return nil }
        defer { freeaddrinfo(list) }
        guard let a = first.pointee.ai_addr else { return nil }
        let bytes = [UInt8](UnsafeRawBufferPointer(start: UnsafeRawPointer(a), count: Int(first.pointee.ai_addrlen)))
        return Address(family: first.pointee.ai_family, bytes: bytes)
    }

    /// True when a TCP socket binds to `port` on `address` now.
    package static func isFree(port: Int, address: Address) -> Bool {
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0, address.bytes.count >= 4 else { return false }
        defer { close(fd) }
        var bytes = address.bytes
        // sin_port and sin6_port sit at the same offset, after the family.
        bytes[2] = UInt8(port >> 8)
        bytes[3] = UInt8(port & 0xFF)
        return bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return false }
            return bind(fd, base.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count)) == 0
        }
    }

    /// The first port from `lowest` that is free on `address`.
    package static func firstFree(from lowest: Int, address: Address) -> Int? {
        guard lowest <= 65535 else { return nil }
        return (lowest...65535).first { isFree(port: $0, address: address) }
    }

    /// Sockets bound to ports the kernel chose, held until `release`, so
    /// that no two choices are the same port.
    package struct Held {
        private var fds: [Int32] = []

        package init() {}

        /// Binds port 0 on the IPv4 `address` for `tcp` or UDP; the port the
        /// kernel gave, or the errno message.
        package mutating func bindAny(address: String, tcp: Bool) -> Result<Int, PortError> {
            let fd = socket(AF_INET, Int32((tcp ? SOCK_STREAM : SOCK_DGRAM).rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { return .failure(PortError(message: FileSystem.errnoMessage(), bound: false)) }
            fds.append(fd)
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_addr.s_addr = inet_addr(address)
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let ok = withUnsafeMutablePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
            }
            guard ok else { return .failure(PortError(message: FileSystem.errnoMessage(), bound: true)) }
            return .success(Int(UInt16(bigEndian: sa.sin_port)))
        }

        package mutating func release() {
            for fd in fds { close(fd) }
            fds.removeAll()
        }
    }

    /// Why no port: `bound` false when not even a socket was made.
    package struct PortError: Error {
        package var message: String
        package var bound: Bool
    }
}
