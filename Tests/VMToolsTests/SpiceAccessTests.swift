import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// A real SPICE server asked to let a viewer in (vm.settings(5),
/// `vm_display_password`, `vm_display_iface=unix`; vmtools(7), DISPLAYS):
/// the link stage of the SPICE protocol, written here, with the password
/// encrypted by `openssl`. QEMU serves SPICE before any guest boots, so the
/// VM has no disk at all.
@Suite(.serialized) struct SpiceAccessTests {
    /// SPICE_LINK_ERR_OK and SPICE_LINK_ERR_PERMISSION_DENIED.
    static let linkOK: UInt32 = 0
    static let permissionDenied: UInt32 = 7

    static func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    static func readLE32(_ b: ArraySlice<UInt8>) -> UInt32 {
        b.prefix(4).enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
    }

    /// The link of a main channel on `fd`, as spice-gtk does it: a
    /// SpiceLinkHeader ("REDQ", protocol 2.2) and a SpiceLinkMess
    /// advertising auth selection and SPICE tickets; the server's
    /// SpiceLinkReply carries an RSA-1024 key (X.509 SubjectPublicKeyInfo,
    /// 162 bytes); we choose SPICE tickets, send `password` + NUL encrypted
    /// with RSA-OAEP (SHA-1), 128 bytes, and return the server's link result.
    /// Every field is little-endian. Nil where the server broke off.
    static func link(_ fd: Int32, password: String, openssl: String, scratch s: Scratch) throws -> UInt32? {
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        func readExactly(_ n: Int) -> [UInt8]? {
            var out: [UInt8] = []
            var buf = [UInt8](repeating: 0, count: max(n, 1))
            while out.count < n {
                let got = read(fd, &buf, n - out.count)
                guard got > 0 else { return nil }
                out += buf[..<got]
            }
            return out
        }
        func send(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBytes { write(fd, $0.baseAddress, bytes.count) } == bytes.count }

        // SpiceLinkMess: connection_id 0, channel 1 (main) id 0, one common
        // caps word (AUTH_SELECTION | AUTH_SPICE), no channel caps, caps
        // right after the 18-byte message.
        let mess = le32(0) + [1, 0] + le32(1) + le32(0) + le32(18) + le32(0b11)
        let header = Array("REDQ".utf8) + le32(2) + le32(2) + le32(UInt32(mess.count))
        guard send(header + mess), let reply = readExactly(16) else { return nil }
        #expect(Array(reply[0..<4]) == Array("REDQ".utf8), "\(reply)")
        #expect(readLE32(reply[4...]) == 2, "major version")
        let size = Int(readLE32(reply[12...]))
        guard size >= 4 + 162 + 12, let body = readExactly(size) else { return nil }
        #expect(readLE32(body[0...]) == linkOK, "the link reply's error")
        let key = try s.writeBytes("spice-key-\(fd).der", Array(body[4..<166]))
        let plain = try s.writeBytes("spice-ticket-\(fd)", Array(password.utf8) + [0])
        let cipher = s.url("spice-ticket-\(fd).enc")
        let r = try Subprocess(openssl, ["pkeyutl", "-encrypt", "-pubin", "-keyform", "DER", "-inkey", key, "-in", plain, "-out", cipher,
                                         "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha1"]).run()
        try #require(r.status == 0, "openssl: \(r.stderrText)")
        let ticket = [UInt8](try Data(contentsOf: URL(fileURLWithPath: cipher)))
        try #require(ticket.count == 128)
        // SpiceLinkAuthMechanism: SPICE_COMMON_CAP_AUTH_SPICE (1), then the ticket.
        guard send(le32(1) + ticket), let result = readExactly(4) else { return nil }
        return readLE32(result[...])
    }

    /// A fresh connection to `endpoint` linked with `password`.
    static func link(_ endpoint: Endpoint, password: String, openssl: String, scratch: Scratch) throws -> UInt32? {
        let fd: Int32
        switch endpoint {
        case .tcp(let port): fd = DisplayAccessTests.connectTCP(port: port)
        case .unix(let path): fd = DisplayAccessTests.connectUnix(path)
        }
        try #require(fd >= 0, "cannot connect to \(endpoint)")
        defer { close(fd) }
        return try link(fd, password: password, openssl: openssl, scratch: scratch)
    }

    enum Endpoint { case tcp(Int), unix(String) }

    /// One VM started three times: SPICE on TCP with a generated password
    /// (vminfo shows it; the right one links, a wrong or empty one is
    /// denied), on a UNIX socket without a password (0600; an empty ticket
    /// links), and on the socket with a password file.
    @Test(.requires("qemu-system-x86_64", "openssl")) func theSPICEServerAsksForThePasswordAndTheSocketIsPrivate() throws {
        guard let openssl = requireTool("openssl"), requireTool("qemu-system-x86_64") != nil else { return }
        let lab = try BootLab(config: "vm_ram_size=64M\nvm_cpu_count=1\n")
        let s = lab.s, cli = lab.cli
        try s.write("vm/vm.settings", "vm_name=vm\nvm_display_type=spice\n")
        let home = s.url("vm")
        func down() throws {
            let r = try cli.run("vmdown", ["-t", "-w", home])
            #expect(r.status == 0, "\(r.err)")
        }

        let up = try cli.run("vmup", ["-o", "vm_display_password=auto", home])
        try #require(up.status == 0, "\(up.err)")
        let passwordFile = home + "/" + VMFileNames.displayPassword
        let password = try String(contentsOfFile: passwordFile, encoding: .utf8)
        let info = try cli.run("vminfo", ["-i", "-l", home])
        #expect(info.out.contains("Display password: \(password)\n"), "\(info.out)")
        let display = try #require(info.out.split(separator: "\n").first { $0.hasPrefix("Display: spice://127.0.0.1:") }, "\(info.out)")
        let port = try #require(Int(display.split(separator: ":").last ?? ""))
        #expect(try Self.link(.tcp(port), password: password, openssl: openssl, scratch: s) == Self.linkOK)
        #expect(try Self.link(.tcp(port), password: password + "x", openssl: openssl, scratch: s) == Self.permissionDenied)
        #expect(try Self.link(.tcp(port), password: "", openssl: openssl, scratch: s) == Self.permissionDenied)
        try down()
        #expect(!FileSystem.lexists(passwordFile))

        let open = try cli.run("vmup", ["-o", "vm_display_iface=unix", "-o", "vm_display_password=no", home])
        try #require(open.status == 0, "\(open.err)")
        let socket = home + "/" + VMFileNames.displaySocket
        #expect((open.out + open.err).contains("vm: listening on spice+unix://\(socket)"), "\(open.out)\(open.err)")
        var st = stat()
        #expect(lstat(socket, &st) == 0 && st.st_mode & S_IFMT == S_IFSOCK)
        #expect(st.st_mode & 0o777 == 0o600, "\(String(st.st_mode & 0o777, radix: 8))")
        #expect(try Self.link(.unix(socket), password: "", openssl: openssl, scratch: s) == Self.linkOK)
        try down()
        #expect(!FileSystem.lexists(socket))

        let secret = try s.write("spice.password", "correct horse")
        let locked = try cli.run("vmup", ["-o", "vm_display_iface=unix", "-o", "vm_display_password=\(secret)", home])
        try #require(locked.status == 0, "\(locked.err)")
        #expect(lstat(socket, &st) == 0 && st.st_mode & 0o777 == 0o600)
        #expect(try Self.link(.unix(socket), password: "correct horse", openssl: openssl, scratch: s) == Self.linkOK)
        #expect(try Self.link(.unix(socket), password: "", openssl: openssl, scratch: s) == Self.permissionDenied)
        try down()
    }
}
