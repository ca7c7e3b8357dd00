import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// Names, paths and values are data: human output shows their control
/// characters escaped, so none can retitle or drive the terminal (issue 10, B7).
@Suite struct OutputEscapingTests {
    /// ESC ] 0 ; … BEL sets the terminal's title; CR fakes lines. A TAB is
    /// harmless to a terminal and printed as it is (issue 22): scripts grep
    /// `vminfo` output for real paths holding one.
    static let hostile = "evil\u{1B}]0;pwned\u{07}\tx\ry"
    static let shown = "evil\\e]0;pwned\\x07\tx\\ry"
    /// The same word as a command line shows it: ANSI-C quoted, TAB included.
    static let shellQuoted = "$'evil\\e]0;pwned\\x07\\tx\\ry'"

    /// No byte below 0x20 but the line ends and TAB, no DEL, no C1 control.
    static func rawControls(_ s: String) -> [Unicode.Scalar] {
        s.unicodeScalars.filter { ($0.value < 0x20 && $0 != "\n" && $0 != "\t") || (0x7F...0x9F).contains($0.value) }
    }

    @Test func escapesEveryControlCharacterAndNothingElse() {
        #expect(Self.hostile.escapingControlCharacters == Self.shown)
        #expect("a\nb\u{7F}\u{9B}c\u{00}".escapingControlCharacters == "a\\nb\\x7f\\u{9b}c\\x00")
        // Only TAB passes; every other C0 control, DEL and every C1 control is escaped.
        #expect("foo\tbar".escapingControlCharacters == "foo\tbar")
        for v in Array(0x00...0x1F) + Array(0x7F...0x9F) where v != 0x09 {
            let e = String(Unicode.Scalar(UInt8(v))).escapingControlCharacters
            #expect(e.hasPrefix("\\") && Self.rawControls(e).isEmpty && !e.contains("\t"), "U+\(String(v, radix: 16))")
        }
        #expect("plain 'é' \\e path/ünïcode".escapingControlCharacters == "plain 'é' \\e path/ünïcode")
        // Escaping output again changes nothing (the table escapes, then print does).
        #expect(Self.shown.escapingControlCharacters == Self.shown)
    }

    /// Command lines (`vmup -v`, `vmps -o e`) quote words so a shell reads
    /// them back exactly, control characters included, and show none raw.
    @Test(.requires("bash")) func shellQuotedWordsReadBackExactly() throws {
        guard let bash = requireTool("bash") else { return }
        let words = [Self.hostile, "a\tb c", "it's", "back\\slash\u{9B}", "tab\there", "plain", "", "ünï code"]
        let quoted = words.map(shellQuote)
        #expect(quoted.allSatisfy { Self.rawControls($0).isEmpty && !$0.contains("\t") }, "\(quoted)")
        #expect(shellQuote("a\tb") == "$'a\\tb'" && shellQuote("a b") == "'a b'" && shellQuote("ab") == "ab")
        let r = try Subprocess(bash, ["-c", "printf '%s\\0' " + quoted.joined(separator: " ")]).run()
        #expect(r.stdoutText.split(separator: "\0", omittingEmptySubsequences: false).dropLast().map(String.init) == words)
    }

    @Test func tablesMeasureTheEscapedCells() {
        let lines = Formatting.table([["NAME", "PID"], ["a\u{1B}b", "1"], ["abcdef", "2"]])
        #expect(lines == ["NAME    PID", "a\\eb    1", "abcdef  2"])
    }

    @Test func everyConsolePathEscapesButKeepsItsLineEnds() throws {
        let s = Scratch()
        let file = try s.write("console", "")
        let fd = open(file, O_WRONLY | O_APPEND)
        try #require(fd >= 0)
        defer { close(fd) }
        let stream = OutputStream(fd: fd)
        let console = Console(command: "vmtest", out: stream, err: stream, verbosity: 4)
        console.print(Self.hostile)
        console.error(VMToolsError(.failure, Self.hostile, "bad \u{1B}[2J"))
        console.warning(Self.hostile)
        console.notice(Self.hostile)
        console.info(Self.hostile)
        console.progress(Self.hostile)
        console.trace(Self.hostile)
        console.debug(Self.hostile)
        console.ask(Self.hostile + "? ")
        console.explain("help \u{1B}one\nhelp two")
        console.flush()
        let text = try s.read("console")
        #expect(Self.rawControls(text).isEmpty, "raw control characters: \(Self.rawControls(text))")
        #expect(text.split(separator: "\n", omittingEmptySubsequences: false).count == 11)
        // A subject is quoted as the shell reads it back: $'…'.
        #expect(text.hasPrefix("\(Self.shown)\nvmtest: ERROR: \(Self.shellQuoted): bad \\e[2J\n"))
        #expect(text.hasSuffix("\(Self.shown)? help \\eone\nhelp two\n"))
    }

    @Test func vminfoAndErrorMessagesShowAHostileNameEscaped() throws {
        let s = Scratch()
        try s.write("vm/vm.settings", "vm_name='\(Self.hostile)'\n")
        let cli = try CLI(s)
        for args in [["-i"], ["-il"], ["-t"]] {
            let r = try cli.run("vminfo", args + [s.url("vm")])
            #expect(r.status == 0, "\(args): \(r.err)")
            #expect(r.out.contains(Self.shown), "\(args)")
            #expect(Self.rawControls(r.out + r.err).isEmpty, "\(args)")
        }
        // JSON keeps its own escapes and stays parseable.
        let j = try cli.run("vminfo", ["-j", s.url("vm")])
        #expect(j.out.contains("evil\\u001b]0;pwned\\u0007\\tx\\ry"))
        // In error messages: an operand with control characters.
        let missing = s.url(Self.hostile)
        // vmdown: a VM that is not running is status 3 (vmdown(1)).
        for (cmd, args, status) in [("vminfo", [missing], Int32(1)), ("vmdown", [missing], 3), ("vmup", ["-n", missing], 1)] {
            let r = try cli.run(cmd, args)
            #expect(r.status == status, "\(cmd): \(r.status)")
            // The subject is shell-quoted ($'…'), which spells its TAB `\t`.
            #expect(r.err.contains(Self.shellQuoted.dropFirst(2).dropLast()), "\(cmd): \(r.err)")
            #expect(Self.rawControls(r.out + r.err).isEmpty, "\(cmd)")
        }
    }

    /// Scripts written for the original tool grep `vminfo -t` and
    /// `vminfo -alt` for real paths: one holding a TAB is printed as it is.
    @Test func aTabInAPathIsPrintedAsItIs() throws {
        let s = Scratch()
        try s.write("foo\tbar/vm.settings", "vm_name='a\tb'\n")
        let cli = try CLI(s)
        for args in [["-t"], ["-alt"], ["-i"]] {
            let r = try cli.run("vminfo", args + [s.url("foo\tbar")])
            #expect(r.status == 0, "\(args): \(r.err)")
            #expect(r.out.contains(args == ["-i"] ? "a\tb" : s.url("foo\tbar")), "\(args): \(r.out)")
            #expect(!r.out.contains("\\t"), "\(args): \(r.out)")
        }
    }

    /// vmps shows what any user's QEMU calls itself: its `-name` is escaped.
    @Test(.requires("qemu-system-x86_64")) func vmpsShowsAHostileQemuNameEscaped() throws {
        guard requireTool("qemu-system-x86_64") != nil else { return }
        let s = Scratch()
        try s.mkdir("q")
        // Paused (-S): no guest runs; only its command line matters.
        let qemu = try RawGuest(in: s.url("q"), ["-S", "-name", Self.hostile], memory: "16")
        let pid = try #require(qemu.pid)
        defer { withExtendedLifetime(qemu) {} }
        let cli = try CLI(s)
        let r = try cli.run("vmps", ["-a", "-o", "pnu"])
        #expect(r.status == 0)
        let line = try #require(r.outLines.first { $0.hasPrefix("\(pid) ") })
        #expect(line.contains(" \(Self.shown)  "))
        #expect(Self.rawControls(r.out + r.err).isEmpty)
        let e = try cli.run("vmps", ["-r", "-o", "e", "-p", String(pid)])
        #expect(e.out.contains(Self.shellQuoted))
        #expect(Self.rawControls(e.out + e.err).isEmpty)
        let j = try cli.run("vmps", ["-j", "-p", String(pid)])
        #expect(j.out.contains("\"evil\\u001b]0;pwned\\u0007\\tx\\ry\""))
    }
}
