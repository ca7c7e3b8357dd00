import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

@Suite struct VMRndMacTests {
    static let hex = Set("0123456789abcdef")

    func bytes(_ mac: String) -> [UInt8] { mac.split(separator: ":").map { UInt8($0, radix: 16)! } }

    @Test func usesTheConfiguredPrefixAndRandomBytes() throws {
        let cli = try CLI(Scratch())
        var seen: Set<String> = []
        for _ in 0..<40 {
            let r = try cli.run("vmrndmac")
            #expect(r.status == 0 && r.err.isEmpty)
            let mac = String(r.out.dropLast())
            #expect(r.out.hasSuffix("\n"))
            #expect(mac.hasPrefix("52:54:00:"))
            #expect(mac.count == 17)
            #expect(mac.dropFirst(9).allSatisfy { Self.hex.contains($0) || $0 == ":" })
            seen.insert(mac)
        }
        // 24 random bits: 40 draws repeat with probability < 1e-4.
        #expect(seen.count >= 39)
    }

    @Test func takesThePrefixFromTheSystemConfiguration() throws {
        let s = Scratch()
        let cli = try CLI(s)
        try s.write("etc/vmtools.conf", "vm_networking_default_mac='0A:bc:'\n")
        let r = try cli.run("vmrndmac")
        #expect(r.status == 0)
        #expect(r.out.hasPrefix("0A:bc:") && r.out.count == 18)
    }

    @Test func anEmptyPrefixGivesALocallyAdministeredUnicastAddress() throws {
        let s = Scratch()
        let cli = try CLI(s)
        try s.write("etc/vmtools.conf", "vm_networking_default_mac=''\n")
        var firstBytes: Set<UInt8> = []
        for _ in 0..<40 {
            let r = try cli.run("vmrndmac")
            let b = bytes(String(r.out.dropLast()))
            #expect(b.count == 6)
            #expect(b[0] & 0x01 == 0, "multicast bit set")
            #expect(b[0] & 0x02 == 0x02, "locally administered bit clear")
            firstBytes.insert(b[0])
        }
        #expect(firstBytes.count > 5)
    }

    @Test(arguments: [("12:34:ab:cd", "12:34:ab:cd:"), ("12:34:ab:cd:", "12:34:ab:cd:"), ("12:34:56:78:9A:BC", "12:34:56:78:9A:BC"),
                      ("12:34:56:78:9A:BC:", "12:34:56:78:9A:BC"), ("fe", "fe:")])
    func keepsThePrefixAsTyped(_ prefix: String, _ expected: String) throws {
        let r = try CLI(Scratch()).run("vmrndmac", [prefix])
        #expect(r.status == 0)
        #expect(r.out.hasPrefix(expected) && r.out.count == 18)
    }

    @Test(arguments: [(":12:34:ab:cd", "wrong structure"), ("12:34:56:78:9A:BC:DE", "wrong structure"), ("123", "wrong structure"),
                      ("13:00", "multicast bit"), ("ff", "multicast bit"), ("-x", "wrong structure"), ("1g", "wrong structure"),
                      ("12::34", "wrong structure"), ("１２", "wrong structure")])
    func refusesBadPrefixes(_ prefix: String, _ reason: String) throws {
        let r = try CLI(Scratch()).run("vmrndmac", ["--", prefix])
        #expect(r.status == 1)
        #expect(r.out.isEmpty)
        #expect(r.err.hasPrefix("vmrndmac: ERROR: \(prefix): ") && r.err.contains(reason))
        #expect(r.err.split(separator: "\n").count == 1)
    }

    /// Issue 10, B9: the original ignored `54` here and printed a 52:… address.
    @Test func refusesASecondOperand() throws {
        for args in [["52", "54"], ["--", "52:54", "00"], ["-x", "y"]] {
            let r = try CLI(Scratch()).run("vmrndmac", args)
            #expect(r.status == 2 && r.out.isEmpty, "\(args)")
            #expect(r.err.hasPrefix("vmrndmac: ERROR: one prefix expected, got 2 operands ("), "\(args): \(r.err)")
        }
    }

    @Test func unknownDashWordsAreInvalidPrefixes() throws {
        for word in ["-x", "--x"] {
            let r = try CLI(Scratch()).run("vmrndmac", [word])
            #expect(r.status == 1 && r.err.contains("wrong structure"), "\(word)")
        }
    }

    @Test func aBadConfiguredPrefixNamesTheSetting() throws {
        let s = Scratch()
        try s.write("etc/vmtools.conf", "vm_networking_default_mac=01:00\n")
        let r = try CLI(s).run("vmrndmac")
        #expect(r.status == 1)
        #expect(r.err.contains("vm_networking_default_mac") && r.err.contains(s.url("etc/vmtools.conf") + ":1"))
    }
}
