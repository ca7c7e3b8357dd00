/// Exit statuses shared by every command (documented in vmtools(1)).
public enum ExitCode: Int32, Sendable {
    case success = 0
    /// The operation failed; partial work was rolled back.
    case failure = 1
    /// Wrong usage; nothing was done.
    case usage = 2
    /// A command-specific soft result: nothing running, issues found, cancelled.
    case soft = 3
}

/// The one error type of vmtools. `subject` is the VM home, file or `file:line`
/// the message is about; it is printed in front of the message.
public struct VMToolsError: Error, Equatable, Sendable, CustomStringConvertible {
    public var code: ExitCode
    public var subject: String?
    public var message: String

    public init(_ code: ExitCode = .failure, _ subject: String? = nil, _ message: String) {
        self.code = code
        self.subject = subject
        self.message = message
    }

    public static func usage(_ message: String) -> VMToolsError {
        VMToolsError(.usage, nil, message)
    }

    /// `file:line: message`, the form every settings-file error takes.
    public static func file(_ path: String, line: Int, _ message: String) -> VMToolsError {
        VMToolsError(.failure, "\(path):\(line)", message)
    }

    public var description: String {
        guard let subject else { return message }
        return "\(quoteSubject(subject)): \(message)"
    }
}

/// Subjects are quoted only when they need it, so `file:line` stays clickable.
func quoteSubject(_ s: String) -> String {
    let plain = s.unicodeScalars.allSatisfy { $0.value > 0x20 && $0 != "'" && $0 != "\u{7f}" }
    return plain ? s : shellQuote(s)
}
