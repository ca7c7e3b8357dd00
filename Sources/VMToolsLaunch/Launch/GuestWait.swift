import VMToolsCore

#if canImport(Glibc)
import Glibc
#endif

/// `vmup -w` (vmup(1)): wait until the guest's SSH server answers on its
/// forward with an `SSH-` banner. slirp accepts the host connection before
/// the guest does, so an open port alone proves nothing: the banner does.
package enum GuestWait {
    /// Waits up to `seconds`; a dots line on stderr when it is a terminal.
    /// The error names the VM, the address and the limit; QEMU keeps running.
    package static func waitForSSH(vm: String, address: String, port: Int, seconds: Int, console: Console) throws {
        let deadline = SystemClock.now() + Double(seconds)
        let tty = console.err.isTerminal && console.verbosity >= 2
        let start = SystemClock.now()
        let label = "\(console.command): \(vm.escapingControlCharacters): waiting for SSH on \(address):\(port)"
        defer { if tty { console.err.write("\n"); console.err.flush() } }
        while true {
            if tty {
                console.err.write("\r\(label) " + String(repeating: ".", count: Int(SystemClock.now() - start) % 4 + 1) + "    ")
                console.err.flush()
            }
            if hasSSHBanner(address: address, port: port, timeout: min(3, max(0.2, deadline - SystemClock.now()))) {
                if tty { console.err.write("\r\(label) ... ready after \(Int(SystemClock.now() - start)) s") }
                return
            }
            if SystemClock.now() >= deadline { break }
            SystemClock.sleep(min(0.5, max(0, deadline - SystemClock.now())))
        }
        throw VMToolsError(.failure, vm, "the guest's SSH server did not answer on \(address):\(port) within \(seconds) s (cfg_limit_waitguest); the VM keeps running")
    }

    /// One TCP connection, which sends a client's identification: true when
    /// the first bytes read are `SSH-`.
    package static func hasSSHBanner(address: String, port: Int, timeout: Double) -> Bool {
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, address, &sa.sin_addr) == 1 else { return false }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &sa) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return false }
        // Our identification first, as an SSH client may (RFC 4253 4.2):
        // Debian 12's passt completes the guest's handshake only when the
        // host side sends, so a server that speaks first would wait forever.
        let hello = Array("SSH-2.0-vmtools-wait\r\n".utf8)
        // MSG_NOSIGNAL: a guest that closed at once must not kill vmup with SIGPIPE.
        guard send(fd, hello, hello.count, Int32(MSG_NOSIGNAL)) == hello.count else { return false }
        var got: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 64)
        while got.count < 4 {
            let n = read(fd, &buf, buf.count)
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return false }
            got += buf[..<n]
        }
        return got.prefix(4).elementsEqual("SSH-".utf8)
    }
}
