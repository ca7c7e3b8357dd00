/// The value syntax of `vm.settings` (vm.settings(5) SYNTAX, vm.settings(5) WRITING): unquoted
/// runs of `[ALNUM._/-]`, single-quoted runs, and `\'` for a literal quote.
/// Nothing else is interpreted: no `$`, no globbing, no other escapes.
public enum ExtendedString {
    /// Characters written without quotes (the writer's ASCII-only class).
    static func isPlainASCII(_ c: Unicode.Scalar) -> Bool {
        switch c {
        case "a"..."z", "A"..."Z", "0"..."9", ".", "_", "/", "-": return true
        default: return false
        }
    }

    /// Characters the reader accepts unquoted: the original ran in C.UTF-8,
    /// where Unicode letters and digits are `[:alnum:]`.
    static func isUnquotedAllowed(_ c: Unicode.Scalar) -> Bool {
        if isPlainASCII(c) { return true }
        guard c.value >= 0x80 else { return false }
        let p = c.properties
        return p.isAlphabetic || p.numericType == .decimal
    }

    /// Characters `/bin/sh` leaves alone in an assignment's value, where
    /// there is no field splitting and no pathname or brace expansion: the
    /// original's files were sourced, so these read as themselves. (`~` is
    /// literal too, except at the start or after an unquoted `:`.)
    static func isLiteralInAssignment(_ c: Unicode.Scalar) -> Bool {
        "!#%*+,:=?@[]^{}~".unicodeScalars.contains(c)
    }

    /// Encodes a value the way the original writer does.
    public static func encode(_ value: String) -> String {
        if value.isEmpty { return "''" }
        if value.unicodeScalars.allSatisfy(isPlainASCII) { return value }
        return "'" + value.replacingAll("'", with: "'\\''") + "'"
    }

    public enum DecodeError: Error, Equatable {
        case unterminatedQuote
        case invalidCharacter(Character)
        /// An unquoted `~` where the shell would expand it to a home directory.
        case tilde
    }

    /// Decodes one extended string (the whole input). An `assignment` (a
    /// `vm_NAME=` value) also takes unquoted what the shell reads literally
    /// there (`bridge:br0`); a command word (`parent PATH`) does not.
    public static func decode(_ text: Substring, assignment: Bool = false) throws(DecodeError) -> String {
        var out = String.UnicodeScalarView()
        var it = text.unicodeScalars.makeIterator()
        // Tilde expansion happens at the value's start and after an unquoted ':'.
        var tildeExpands = true
        while let c = it.next() {
            let expands = tildeExpands
            tildeExpands = false
            if c == "'" {
                var closed = false
                while let q = it.next() {
                    if q == "'" { closed = true; break }
                    if q == "\n" { throw .unterminatedQuote }
                    out.append(q)
                }
                if !closed { throw .unterminatedQuote }
            } else if c == "\\" {
                guard let n = it.next(), n == "'" else { throw .invalidCharacter("\\") }
                out.append("'")
            } else if isUnquotedAllowed(c) {
                out.append(c)
            } else if assignment, isLiteralInAssignment(c) {
                if c == "~" && expands { throw .tilde }
                tildeExpands = c == ":"
                out.append(c)
            } else {
                throw .invalidCharacter(Character(c))
            }
        }
        return String(out)
    }

    /// Splits an extended-string list (vm.settings(5) SYNTAX) into decoded words. Accepts the
    /// original's forms plus, as the spec's improvement, unquoted words of any
    /// printable character except quotes and backslash.
    public static func splitList(_ value: String) throws(DecodeError) -> [String] {
        var words: [String] = []
        var current = String.UnicodeScalarView()
        var inWord = false
        let scalars = Array(value.unicodeScalars)
        var i = 0
        while i < scalars.count {
            let c = scalars[i]
            if isShellBlank(c) || c == "\n" {
                if inWord { words.append(String(current)); current = .init(); inWord = false }
                i += 1
                continue
            }
            inWord = true
            switch c {
            case "'":
                i += 1
                var closed = false
                while i < scalars.count {
                    if scalars[i] == "'" { closed = true; break }
                    current.append(scalars[i])
                    i += 1
                }
                if !closed { throw .unterminatedQuote }
                i += 1
            case "\\":
                guard i + 1 < scalars.count, scalars[i + 1] == "'" else { throw .invalidCharacter("\\") }
                current.append("'")
                i += 2
            case "\"":
                // Only the word form "'" is accepted, as in the original.
                guard i + 2 < scalars.count, scalars[i + 1] == "'", scalars[i + 2] == "\"" else {
                    throw .invalidCharacter("\"")
                }
                current.append("'")
                i += 3
            default:
                if c.value < 0x20 || c.value == 0x7f { throw .invalidCharacter(Character(c)) }
                current.append(c)
                i += 1
            }
        }
        if inWord { words.append(String(current)) }
        return words
    }

    /// Joins words into a list value that `splitList` reads back unchanged.
    public static func joinList(_ words: [String]) -> String {
        words.map { w in
            if !w.isEmpty, w.unicodeScalars.allSatisfy(isPlainASCII) { return w }
            return "'" + w.replacingAll("'", with: "'\\''") + "'"
        }.joined(separator: " ")
    }
}
