import VMToolsCore

/// Options in command-line order, and the operands.
public struct ParsedArguments: Sendable, Equatable {
    public struct Occurrence: Sendable, Equatable {
        public var letter: Character
        public var value: String?
    }

    public var occurrences: [Occurrence] = []
    public var operands: [String] = []
    /// `--version` was given.
    public var version = false
    /// The letters of the spec this was parsed from (empty when built by
    /// hand). Commands read options by letter only in their `Options`
    /// initialiser; asking for a letter the spec lacks would silently read
    /// "not given", so debug builds trap instead.
    public var known: Set<Character> = []

    public init(occurrences: [Occurrence] = [], operands: [String] = [], version: Bool = false, known: Set<Character> = []) {
        self.occurrences = occurrences
        self.operands = operands
        self.version = version
        self.known = known
    }

    public func isKnown(_ c: Character) -> Bool { known.isEmpty || known.contains(c) }

    func checked(_ c: Character) -> Character {
        assert(isKnown(c), "-\(c) is not an option of this command (known: \(String(known.sorted())))")
        return c
    }

    public func has(_ c: Character) -> Bool { let c = checked(c); return occurrences.contains { $0.letter == c } }
    public func count(_ c: Character) -> Int { let c = checked(c); return occurrences.filter { $0.letter == c }.count }
    public func values(_ c: Character) -> [String] { let c = checked(c); return occurrences.filter { $0.letter == c }.compactMap(\.value) }
    public func last(_ c: Character) -> String? { values(c).last }
    /// The occurrences of these letters, in command-line order (where a
    /// later option overrides or extends an earlier one).
    public func occurrences(of letters: String) -> [Occurrence] {
        let wanted = Set(letters.map(checked))
        return occurrences.filter { wanted.contains($0.letter) }
    }

    /// `-v` count minus `-q` count.
    public var verbosityDelta: Int { count("v") - count("q") }
}

/// POSIX `getopts` rules: grouped flags (`-qy`), arguments attached or
/// separate (`-ovm_x=1`, `-o vm_x=1`), parsing stops at `--` or at the first
/// operand, so operands may start with `-` after `--`. An optional argument
/// (`vmps -w [seconds]`) is attached, or the next word if that is a number.
public enum ArgumentParser {
    public static func parse(_ args: [String], spec: CommandSpec) throws -> ParsedArguments {
        var result = ParsedArguments(known: Set(spec.options.map(\.letter)))
        var i = 0
        scan: while i < args.count {
            let a = args[i]
            if a == "--" { i += 1; break }
            guard a.hasPrefix("-"), a != "-" else { break }
            if a.hasPrefix("--") {
                switch a {
                case "--help": result.occurrences.append(.init(letter: "h", value: nil))
                case "--version": result.version = true
                // vmrndmac: an unknown word is its (invalid) prefix.
                case _ where spec.unknownOptionsAreOperands: break scan
                default: throw VMToolsError.usage("unknown option \(a)")
                }
                i += 1
                continue
            }
            let letters = Array(a.dropFirst())
            if spec.unknownOptionsAreOperands, !letters.allSatisfy({ spec.option($0) != nil }) { break scan }
            var j = 0
            while j < letters.count {
                let c = letters[j]
                guard let o = spec.option(c) else {
                    throw VMToolsError.usage("unknown option -\(c)")
                }
                if o.argumentIsOptional {
                    var value: String? = String(letters[(j + 1)...])
                    if value!.isEmpty {
                        value = nil
                        if i + 1 < args.count, isNumber(args[i + 1]) { i += 1; value = args[i] }
                    }
                    result.occurrences.append(.init(letter: c, value: value))
                    break
                }
                if let argName = o.argument {
                    var value = String(letters[(j + 1)...])
                    if value.isEmpty {
                        i += 1
                        guard i < args.count else {
                            throw VMToolsError.usage("option -\(c) needs an argument (\(argName))")
                        }
                        value = args[i]
                    }
                    result.occurrences.append(.init(letter: c, value: value))
                    break
                }
                result.occurrences.append(.init(letter: c, value: nil))
                j += 1
            }
            i += 1
        }
        result.operands = Array(args[i...])
        return result
    }

    /// Digits with at most one point: what an optional argument takes from
    /// the next word (anything else there is an option or an operand).
    static func isNumber(_ word: String) -> Bool {
        var digits = 0, points = 0
        for b in word.utf8 {
            if b >= 0x30 && b <= 0x39 { digits += 1 } else if b == 0x2E { points += 1 } else { return false }
        }
        return digits > 0 && points <= 1
    }
}
