import Foundation
import Testing
@testable import VMToolsCore

/// Verified downloads into the image cache (vmimage(1), DOWNLOADS), in
/// process through ImagePuller, from a test server on 127.0.0.1.
@Suite struct ImagePullTests {
    @Test(.requires("python3", "curl"))
    func testServerServesRangesAndCountsRequests() throws {
        let s = Scratch()
        let bytes = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try s.writeBytes("www/a.img", bytes)
        let server = try TestImageServer(directory: s.url("www"), state: s.url("state"), faults: .init(dropOnce: ["/a.img"]))
        defer { server.stop() }
        guard let curl = requireTool("curl") else { return }
        let first = try Subprocess(curl, ["-sS", "--fail", "-o", s.url("got"), server.url("a.img")]).run()
        #expect(first.status == 18)
        let second = try Subprocess(curl, ["-sS", "--fail", "-C", "-", "-o", s.url("got"), server.url("a.img")]).run()
        #expect(second.status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: s.url("got"))) == Data(bytes))
        #expect(server.gets("a.img").map(\.range) == [nil, "bytes=50000-"])
        #expect(server.gets("a.img").map(\.bytes) == [50000, 50000])
    }

    @Test(.requires("gpg", "gpgv", "gpgconf"))
    func testSigningKeySignsWhatGpgvAccepts() throws {
        let s = Scratch()
        let key = try TestSigningKey(directory: s.url("k1"))
        defer { key.stop() }
        let other = try TestSigningKey(directory: s.url("k2"))
        defer { other.stop() }
        let file = try s.write("SUMS", "abc  x.img\n")
        try key.detachSign(file, to: s.url("SUMS.sign"))
        try key.clearSign(file, to: s.url("SUMS.asc"))
        guard let gpgv = requireTool("gpgv") else { return }
        #expect(try Subprocess(gpgv, ["--keyring", key.keyring, s.url("SUMS.sign"), file]).run().status == 0)
        #expect(try Subprocess(gpgv, ["--keyring", key.keyring, s.url("SUMS.asc")]).run().status == 0)
        #expect(try Subprocess(gpgv, ["--keyring", other.keyring, s.url("SUMS.sign"), file]).run().status != 0)
        key.stop()
        other.stop()
        #expect(try Subprocess("/usr/bin/pgrep", ["-f", "gpg-agent --homedir \(s.path)"]).run().status == 1)
    }
}
