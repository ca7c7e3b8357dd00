import VMToolsCore

/// One option letter of a command.
public struct OptionSpec: Sendable, Equatable {
    public var letter: Character
    /// The argument's name when the option takes one (`-o setting=value`).
    public var argument: String?
    /// The argument may be left out (`vmps -w`): it is then the rest of
    /// the word (`-w5`) or the next word when that is a number (`-w 5`).
    public var argumentIsOptional = false
    public var help: String

    /// A flag.
    public init(_ letter: Character, _ help: String) {
        self.letter = letter
        self.argument = nil
        self.help = help
    }

    /// An option that takes an argument.
    public init(_ letter: Character, _ argument: String, _ help: String) {
        self.letter = letter
        self.argument = argument
        self.help = help
    }

    /// An option whose argument, a number, may be left out.
    public init(_ letter: Character, optionalNumber argument: String, _ help: String) {
        self.init(letter, argument, help)
        argumentIsOptional = true
    }

    /// How `-h` and the synopsis show the option's argument.
    var argumentText: String? { argument.map { argumentIsOptional ? "[\($0)]" : $0 } }
}

/// The declarative description of a command. It drives option parsing, `-h`,
/// the shell completions, and the tests that keep the man pages honest.
public struct CommandSpec: Sendable {
    public var name: String
    /// One line for `vmtools -h` and the man page's NAME section.
    public var summary: String
    /// Usage lines after the command name; the first is derived when empty.
    public var synopsis: [String]
    public var options: [OptionSpec]
    /// How operands look (`[vmhome ...]`), for the derived synopsis.
    public var operands: String
    /// What kind of operand completes: `directory`, `file` or nothing.
    public var operandCompletion: OperandKind
    public var exitCodes: [(code: Int32, meaning: String)]
    /// vmrndmac: an unknown `-x` is an operand (an invalid prefix), not a usage error.
    public var unknownOptionsAreOperands: Bool

    /// What a shell completes for operands: `home` VM homes (directories
    /// holding vm.settings), `running` the homes of running VMs, `image`
    /// the names of the image catalog (vmimage(1)), `snapshot` VM homes
    /// then the snapshots of the VM named before (vmsnap(1)).
    public enum OperandKind: String, Sendable { case none, directory, file, home, running, image, snapshot }

    public init(name: String, summary: String, synopsis: [String] = [], options: [OptionSpec],
                operands: String, operandCompletion: OperandKind = .directory,
                exitCodes: [(Int32, String)] = [(0, "success"), (1, "an error occurred"), (2, "wrong usage")],
                unknownOptionsAreOperands: Bool = false) {
        self.name = name
        self.summary = summary
        self.options = (options + Self.common).sorted { a, b in
            a.letter.lowercased() == b.letter.lowercased() ? a.letter < b.letter : a.letter.lowercased() < b.letter.lowercased()
        }
        self.operands = operands
        self.operandCompletion = operandCompletion
        self.exitCodes = exitCodes.map { (code: $0.0, meaning: $0.1) }
        self.unknownOptionsAreOperands = unknownOptionsAreOperands
        self.synopsis = synopsis
        if self.synopsis.isEmpty { self.synopsis = [derivedSynopsis] }
    }

    /// Every command has these.
    static let common: [OptionSpec] = [
        OptionSpec("h", "show this help and exit"),
        OptionSpec("q", "quieter: lower the verbosity (repeatable)"),
        OptionSpec("v", "more verbose: raise the verbosity (repeatable)"),
    ]

    /// Long options every command answers (vmtools(1)): `--help` is `-h`;
    /// `--version` tells which vmtools runs when several are on PATH.
    public static let longOptions: [(name: String, help: String)] = [
        ("help", "show this help and exit"),
        ("version", "print the version and the path of this vmtools, and exit"),
    ]

    public func option(_ c: Character) -> OptionSpec? { options.first { $0.letter == c } }

    var derivedSynopsis: String {
        let flags = String(options.filter { $0.argument == nil }.map(\.letter))
        var parts = ["[-\(flags)]"]
        for o in options { if let a = o.argumentText { parts.append("[-\(o.letter) \(a)]") } }
        parts.append("[--]")
        if !operands.isEmpty { parts.append(operands) }
        return parts.joined(separator: " ")
    }

    /// The `-h` text.
    public var usage: String {
        var lines: [String] = []
        for (i, s) in synopsis.enumerated() {
            lines.append((i == 0 ? "Usage: " : "       ") + name + " " + s)
        }
        lines.append("")
        lines.append(summary.prefix(1).uppercased() + summary.dropFirst() + ".")
        lines.append("")
        lines.append("Options:")
        let width = (options.map { 2 + ($0.argumentText.map { $0.count + 1 } ?? 0) } + Self.longOptions.map { 2 + $0.name.count }).max() ?? 2
        for o in options {
            let head = "-\(o.letter)" + (o.argumentText.map { " \($0)" } ?? "")
            lines.append("  " + head.leftPadded(to: width) + "  " + o.help)
        }
        for l in Self.longOptions { lines.append("  " + ("--" + l.name).leftPadded(to: width) + "  " + l.help) }
        lines.append("")
        lines.append("Exit status:")
        for e in exitCodes { lines.append("  \(e.code)  \(e.meaning)") }
        lines.append("")
        lines.append("See \(name)(1).")
        return lines.joined(separator: "\n") + "\n"
    }
}
