#if canImport(Glibc)
import Glibc
#endif

/// Questions on stderr, answers from stdin (vmtools(1) DIAGNOSTICS). With
/// `cfg_ui_assumeyes=yes` nothing is asked and defaults are taken.
public struct Prompter {
    public var assumeYes: Bool
    let console: Console
    package let interactive: Bool
    let readLineFunction: () -> String?

    /// Without a terminal on stdin nobody can answer: defaults are taken
    /// (a confirmation's default is no).
    public init(assumeYes: Bool, console: Console, stdin: Int32 = 0, interactive: Bool? = nil,
                readLine: @escaping () -> String? = Prompter.readLineWatchingSignals) {
        self.assumeYes = assumeYes
        self.interactive = interactive ?? (isatty(stdin) == 1)
        self.console = console
        self.readLineFunction = readLine
    }

    /// A free-text question; `?` prints `help`; end of input is an error.
    public func ask(_ question: String, default value: String, help: String, valid: (String) -> String?) throws -> String {
        if assumeYes || !interactive { return value }
        while true {
            console.ask("\(question) (default: \(value))? ")
            guard let answer = readLineFunction()?.trimmingTrailingWhitespace() else {
                throw VMToolsError(.failure, nil, "no answer (end of input); use -y to take the defaults")
            }
            if answer.isEmpty { return value }
            if answer == "?" {
                console.explain(help)
                continue
            }
            if let ok = valid(answer) { return ok }
            console.err.write("Invalid answer; type ? for help.\n")
        }
    }

    /// A size: `[1-9][0-9]*` with an optional unit letter from `units`; a bare
    /// number asks for the unit (default G). `0` is accepted when `allowZero`.
    public func askSize(_ question: String, default value: String, units: String, help: String, allowZero: Bool = false) throws -> String {
        let answer = try ask(question, default: value, help: help) { a in
            let u = a.uppercased()
            if allowZero, u == "0" { return u }
            let digits = u.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, digits.first != "0" else { return nil }
            let rest = u.dropFirst(digits.count)
            return rest.isEmpty || (rest.count == 1 && units.contains(rest)) ? u : nil
        }
        guard answer != "0", answer.last?.isNumber == true else { return answer }
        let letters = units.map(String.init)
        let unit = try ask("Unit (\(letters.joined(separator: ", ")))", default: "G", help: "One of \(letters.joined(separator: ", ")).") { a in
            letters.contains(a.uppercased()) ? a.uppercased() : nil
        }
        return answer + unit
    }

    /// A yes/no confirmation, default no; `-y` answers yes.
    public func confirm(_ question: String) throws -> Bool {
        if assumeYes { return true }
        if !interactive { return false }
        while true {
            console.ask("\(question) [yN]? ")
            guard let answer = readLineFunction() else {
                try Interrupt.check()
                return false
            }
            switch answer.trimmingTrailingWhitespace() {
            case "y", "Y": return true
            case "n", "N", "":
                console.err.write("Cancelled by the user.\n")
                return false
            default: continue
            }
        }
    }

    /// `readLine`, except that a Ctrl-C (blocked and pending, see
    /// `Interrupt`) ends the wait: the caller then rolls back.
    public static func readLineWatchingSignals() -> String? {
        var pfd = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
        while Interrupt.pending() == nil {
            if poll(&pfd, 1, 100) != 0 { return Swift.readLine(strippingNewline: true) }
        }
        return nil
    }
}
