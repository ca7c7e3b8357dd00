#if canImport(Glibc)
import Glibc
#endif

/// Questions on stderr, answers from stdin (commands.md §0.2). With
/// `cfg_ui_assumeyes=yes` nothing is asked and defaults are taken.
public struct Prompter {
    public var assumeYes: Bool
    let console: Console
    let interactive: Bool
    let readLineFunction: () -> String?

    /// Without a terminal on stdin nobody can answer: defaults are taken
    /// (a confirmation's default is no).
    public init(assumeYes: Bool, console: Console, stdin: Int32 = 0, interactive: Bool? = nil,
                readLine: @escaping () -> String? = { Swift.readLine(strippingNewline: true) }) {
        self.assumeYes = assumeYes
        self.interactive = interactive ?? (isatty(stdin) == 1)
        self.console = console
        self.readLineFunction = readLine
    }

    /// A free-text question; `?` prints `help`; end of input is an error.
    public func ask(_ question: String, default value: String, help: String, valid: (String) -> String?) throws -> String {
        if assumeYes || !interactive { return value }
        while true {
            console.err.write("\(question) (default: \(value))? ")
            console.err.flush()
            guard let answer = readLineFunction()?.trimmingTrailingWhitespace() else {
                throw VMToolsError(.failure, nil, "no answer (end of input); use -y to take the defaults")
            }
            if answer.isEmpty { return value }
            if answer == "?" {
                console.err.write(help + "\n")
                continue
            }
            if let ok = valid(answer) { return ok }
            console.err.write("Invalid answer; type ? for help.\n")
        }
    }

    /// A yes/no confirmation, default no; `-y` answers yes.
    public func confirm(_ question: String) throws -> Bool {
        if assumeYes { return true }
        if !interactive { return false }
        while true {
            console.err.write("\(question) [yN]? ")
            console.err.flush()
            guard let answer = readLineFunction() else { return false }
            switch answer.trimmingTrailingWhitespace() {
            case "y", "Y": return true
            case "n", "N", "":
                console.err.write("Cancelled by the user.\n")
                return false
            default: continue
            }
        }
    }
}
