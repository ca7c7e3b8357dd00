#if canImport(Glibc)
import Glibc
#endif

/// A buffered writer on a file descriptor. Tests give a command pipes or files.
public final class OutputStream: @unchecked Sendable {
    public let fd: Int32
    private var buffer: [UInt8] = []

    public init(fd: Int32) { self.fd = fd }

    public func write(_ s: String) {
        buffer.append(contentsOf: s.utf8)
        if buffer.count > 1 << 16 { flush() }
    }

    public func flush() {
        var offset = 0
        while offset < buffer.count {
            let n = buffer.withUnsafeBytes { raw in
                Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
            }
            if n < 0 {
                if errno == EINTR { continue }
                break  // EPIPE and friends: nothing sensible left to do with the output
            }
            offset += n
        }
        buffer.removeAll(keepingCapacity: true)
    }

    public var isTerminal: Bool { isatty(fd) == 1 }
}

/// Message levels of vmtools(1) DIAGNOSTICS. Diagnostics always go to stderr.
public final class Console: @unchecked Sendable {
    public let command: String
    public let out: OutputStream
    public let err: OutputStream
    public var verbosity: Int

    public init(command: String, out: OutputStream, err: OutputStream, verbosity: Int = 2) {
        self.command = command
        self.out = out
        self.err = err
        self.verbosity = verbosity
    }

    /// Final results: stdout, one line. Control characters are escaped: a
    /// VM name or path is data and must not drive the terminal (vmtools(1)).
    public func print(_ s: String = "") { out.write(s.escapingControlCharacters + "\n") }

    /// A JSON document: its own quoting already escapes control characters.
    public func printJSON(_ json: JSON) { out.write(json.serialized() + "\n") }

    /// An XML document: its escaping already keeps control characters out.
    public func printXML(_ xml: String) { out.write(xml) }

    /// A question on stderr; the answer is typed after it.
    public func ask(_ question: String) { toStderr(question.escapingControlCharacters) }

    /// Lines for a person on stderr outside the message levels (a prompt's help).
    public func explain(_ text: String) {
        toStderr(text.split(separator: "\n", omittingEmptySubsequences: false).map { String($0).escapingControlCharacters }.joined(separator: "\n") + "\n")
    }

    /// The items under a message ("leftover lock files:"), one indented line
    /// each: a newline inside an item is escaped like any control character.
    public func items(_ list: [String]) {
        toStderr(list.map { "    " + $0.escapingControlCharacters + "\n" }.joined())
    }

    public func error(_ e: VMToolsError) { diag("ERROR", e.description) }
    public func error(_ s: String) { diag("ERROR", s) }
    public func warning(_ s: String) { diag("WARNING", s) }
    public func notice(_ s: String) { diag("NOTICE", s) }
    /// Something an export could not carry over (vminfo(1) `-L`).
    public func note(_ s: String) { diag("NOTE", s) }
    /// A repair `vmfix` made.
    public func solved(_ s: String) { diag("SOLVED", s) }

    /// Level 1: one-line results ("started", "created").
    public func info(_ s: String) { if verbosity >= 1 { diag("INFO", s) } }
    /// Level 2: progress and waiting messages.
    public func progress(_ s: String) { if verbosity >= 2 { line(s) } }
    /// Level 3: main steps.
    public func trace(_ s: String) { if verbosity >= 3 { line(s) } }
    /// Level 4: internal detail.
    public func debug(_ s: String) { if verbosity >= 4 { diag("DEBUG", s) } }

    private func diag(_ prefix: String, _ s: String) { line("\(prefix): \(s)") }

    private func line(_ s: String) { toStderr("\(command): \(s.escapingControlCharacters)\n") }

    /// Stdout first, so results and messages keep their order on a shared terminal.
    private func toStderr(_ text: String) {
        out.flush()
        err.write(text)
        err.flush()
    }

    public func flush() {
        out.flush()
        err.flush()
    }
}
