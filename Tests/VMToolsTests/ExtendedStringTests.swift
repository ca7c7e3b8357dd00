import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

@Suite struct ExtendedStringTests {
    @Test(arguments: [
        ("abc", "abc"), ("'a b'", "a b"), ("a'b c'd", "ab cd"), ("'John'\\''s VM'", "John's VM"),
        ("\\'x", "'x"), ("''", ""), ("", ""), ("'$HOME'", "$HOME"), ("café", "café"),
    ])
    func decodesTheSpecExamples(_ text: String, _ expected: String) throws {
        #expect(try ExtendedString.decode(Substring(text)) == expected)
    }

    @Test(arguments: ["a b", "\"3G\"", "$HOME", "a;b", " x", "a:b", "a,b", "~/x", "a+b", "'open", "a\\b", "`id`", "$(id)"])
    func refusesWhatTheOriginalRefuses(_ text: String) {
        #expect(throws: ExtendedString.DecodeError.self) { try ExtendedString.decode(Substring(text)) }
    }

    @Test(arguments: [
        ("vm1", "vm1"), ("John's VM", "'John'\\''s VM'"), ("52:54:00:29:a7:c7", "'52:54:00:29:a7:c7'"),
        ("café", "'café'"), ("a=b", "'a=b'"), ("~/x", "'~/x'"), ("''", "''\\'''\\'''"), ("", "''"),
    ])
    func encodesLikeTheOriginalWriter(_ value: String, _ expected: String) {
        #expect(ExtendedString.encode(value) == expected)
    }

    /// Every class of value survives encode → decode.
    @Test(arguments: [
        "plain", "", "with space", "quote'inside", "'", "''", "back\\slash", "\\'", "comma,value", "a=b",
        "colon:52:54", "dollar $HOME $(id) `id`", "tab\there", "trailing space ", " leading", "ünïcödé 日本語 🙂",
        "semi;colon", "#hash", "\"double\"", "*?[glob]", "-leading-dash", "\r", "multi  spaces",
    ])
    func roundTripsEveryValueClass(_ value: String) throws {
        #expect(try ExtendedString.decode(Substring(ExtendedString.encode(value))) == value)
    }

    @Test(arguments: [
        ("-enable-kvm -usbdevice tablet", ["-enable-kvm", "-usbdevice", "tablet"]),
        ("-machine 'type=q35'", ["-machine", "type=q35"]),
        ("-append 'console=ttyS0 quiet' -no-reboot", ["-append", "console=ttyS0 quiet", "-no-reboot"]),
        ("'-cpu' 'host,+vmx'", ["-cpu", "host,+vmx"]),
        ("x'y z'w", ["xy zw"]),
        ("a\\'b", ["a'b"]),
        ("\"'\"", ["'"]),
        // The improvement: unquoted printable words are accepted too.
        ("-machine type=q35", ["-machine", "type=q35"]),
        ("  spaced\t\tout  ", ["spaced", "out"]),
    ])
    func splitsListsLikeTheSpec(_ value: String, _ words: [String]) throws {
        #expect(try ExtendedString.splitList(value) == words)
    }

    @Test(arguments: ["'open", "a\\b", "\"x\""])
    func refusesBrokenLists(_ value: String) {
        #expect(throws: ExtendedString.DecodeError.self) { try ExtendedString.splitList(value) }
    }

    @Test func joinListRoundTrips() throws {
        let words = ["-append", "console=ttyS0 quiet", "it's", "", "plain"]
        #expect(try ExtendedString.splitList(ExtendedString.joinList(words)) == words)
    }
}
