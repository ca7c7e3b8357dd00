/// One statement of a `vmtools.conf` or template file.
public enum ConfigStatement: Equatable, Sendable {
    case assign(name: String, value: [ValuePart], line: Int)
    case template(names: [String], line: Int)
}

/// A value is literal text and references to settings built so far
/// (`"$vm_qemu_params -machine q35"`, the template idiom).
public enum ValuePart: Equatable, Sendable {
    case literal(String)
    case setting(String)
}

/// The restricted reader of vmtools.conf(5) SYNTAX: the subset of POSIX shell that
/// configuration files and templates really use, read as data. Anything that
/// would need a shell to evaluate is refused with `file:line: reason`.
public struct ConfigFileParser {
    /// `catalogEntry`: an image catalog entry (vmtools(7), IMAGE CATALOG),
    /// whose `image_*` keys are assignments too.
    public enum Kind: Sendable { case configuration, template, catalogEntry }

    public struct Result: Sendable {
        public var statements: [ConfigStatement] = []
        /// Assignments to names that are not settings (`IFS=…`, `LC_ALL=…`): ignored.
        public var ignored: [(name: String, line: Int)] = []
    }

    let path: String
    let kind: Kind
    private var s: [Unicode.Scalar]
    private var i = 0
    private var line = 1

    public static func parse(_ text: String, path: String, kind: Kind) throws -> Result {
        var p = ConfigFileParser(path: path, kind: kind, text: text)
        return try p.run()
    }

    public static func parseFile(_ path: String, kind: Kind) throws -> Result {
        try parse(SettingsText.read(path), path: path, kind: kind)
    }

    init(path: String, kind: Kind, text: String) {
        self.path = path
        self.kind = kind
        // CRLF line ends read as LF, as in vm.settings; a CR elsewhere stays data.
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(text.unicodeScalars.count)
        var pendingCR = false
        for c in text.unicodeScalars {
            if pendingCR && c != "\n" { scalars.append("\r") }
            pendingCR = c == "\r"
            if !pendingCR { scalars.append(c) }
        }
        if pendingCR { scalars.append("\r") }
        self.s = scalars
    }

    private enum Piece: Equatable {
        case char(Unicode.Scalar, quoted: Bool)
        case setting(String)
    }

    private typealias Word = [Piece]

    private func fail(_ message: String, at l: Int? = nil) -> VMToolsError {
        VMToolsError.file(path, line: l ?? line, message)
    }

    private var atEnd: Bool { i >= s.count }
    private var peek: Unicode.Scalar? { i < s.count ? s[i] : nil }

    private mutating func run() throws -> Result {
        var result = Result()
        while !atEnd {
            let c = s[i]
            if isShellBlank(c) || c == ";" { i += 1; continue }
            if c == "\n" { i += 1; line += 1; continue }
            if c == "#" { skipComment(); continue }
            if c == "\\", i + 1 < s.count, s[i + 1] == "\n" { i += 2; line += 1; continue }
            let startLine = line
            let words = try readWords()
            try handle(words, line: startLine, into: &result)
        }
        return result
    }

    private mutating func skipComment() {
        while let c = peek, c != "\n" { i += 1 }
    }

    /// Reads the words of one simple command, up to a newline, `;` or comment.
    private mutating func readWords() throws -> [Word] {
        var words: [Word] = []
        while let c = peek {
            if isShellBlank(c) { i += 1; continue }
            if c == "\n" || c == ";" { break }
            if c == "#" { skipComment(); break }
            if c == "\\", i + 1 < s.count, s[i + 1] == "\n" { i += 2; line += 1; continue }
            words.append(try readWord())
        }
        return words
    }

    private mutating func readWord() throws -> Word {
        var word: Word = []
        while let c = peek {
            switch c {
            case " ", "\t", "\n", ";":
                return word
            case "'":
                let l = line
                i += 1
                while true {
                    guard let q = peek else { throw fail("unterminated single quote", at: l) }
                    i += 1
                    if q == "'" { break }
                    if q == "\n" { line += 1 }
                    word.append(.char(q, quoted: true))
                }
            case "\"":
                try readDoubleQuoted(into: &word)
            case "\\":
                i += 1
                guard let n = peek else { return word }
                i += 1
                if n == "\n" { line += 1; continue }
                word.append(.char(n, quoted: true))
            case "$":
                try readDollar(into: &word)
            case "`":
                throw fail("command substitution (`…`) needs a shell; vmtools reads settings files as data")
            case "|", "&", "<", ">":
                throw fail("'\(c)' is shell syntax (pipes, redirections, background jobs); vmtools reads settings files as data")
            case "(", ")":
                if word.allSatisfy({ if case .char(_, false) = $0 { return true } else { return false } }), !word.isEmpty {
                    throw fail("function definitions are shell code; vmtools reads settings files as data")
                }
                throw fail("'\(c)' is shell syntax (subshells, functions); vmtools reads settings files as data")
            default:
                i += 1
                word.append(.char(c, quoted: false))
            }
        }
        return word
    }

    private mutating func readDoubleQuoted(into word: inout Word) throws {
        let l = line
        i += 1
        while true {
            guard let c = peek else { throw fail("unterminated double quote", at: l) }
            switch c {
            case "\"":
                i += 1
                return
            case "\\":
                guard i + 1 < s.count else { throw fail("unterminated double quote", at: l) }
                let n = s[i + 1]
                if n == "\n" { i += 2; line += 1; continue }
                if n == "$" || n == "`" || n == "\"" || n == "\\" {
                    word.append(.char(n, quoted: true))
                    i += 2
                } else {
                    word.append(.char("\\", quoted: true))
                    i += 1
                }
            case "$":
                try readDollar(into: &word)
            case "`":
                throw fail("command substitution (`…`) needs a shell; vmtools reads settings files as data")
            default:
                if c == "\n" { line += 1 }
                word.append(.char(c, quoted: true))
                i += 1
            }
        }
    }

    private mutating func readDollar(into word: inout Word) throws {
        i += 1
        guard let c = peek else { word.append(.char("$", quoted: true)); return }
        var name = ""
        if c == "(" {
            throw fail("command substitution $(…) needs a shell; vmtools reads settings files as data")
        } else if c == "{" {
            i += 1
            while let d = peek, d != "}" {
                name.unicodeScalars.append(d)
                i += 1
                if d == "\n" { throw fail("unterminated ${…}") }
            }
            guard peek == "}" else { throw fail("unterminated ${…}") }
            i += 1
            guard SettingName.isIdentifier(Substring(name)) else {
                throw fail("'${\(SettingsText.visible(SettingsText.clip(name)))}': only plain ${cfg_…}/${vm_…} references can be expanded; vmtools reads settings files as data")
            }
        } else if c == "_" || ("a"..."z").contains(c) || ("A"..."Z").contains(c) {
            while let d = peek, d == "_" || ("a"..."z").contains(d) || ("A"..."Z").contains(d) || ("0"..."9").contains(d) {
                name.unicodeScalars.append(d)
                i += 1
            }
        } else if ("0"..."9").contains(c) || "@*#?$!-".unicodeScalars.contains(c) {
            throw fail("'$\(c)' is a shell parameter; vmtools reads settings files as data")
        } else {
            word.append(.char("$", quoted: true))
            return
        }
        guard SettingName.isSetting(Substring(name)) else {
            throw fail("'$\(name)': environment variables are not expanded (only $cfg_…/$vm_… settings); vmtools reads settings files as data")
        }
        word.append(.setting(name))
    }

    /// `NAME=` at the start of a word, unquoted: an assignment.
    private func splitAssignment(_ w: Word) -> (name: String, value: [ValuePart], tilde: Bool)? {
        var name = String.UnicodeScalarView()
        var k = 0
        while k < w.count, case let .char(c, false) = w[k], c != "=" {
            name.append(c)
            k += 1
        }
        guard k < w.count, case .char("=", false) = w[k], SettingName.isIdentifier(Substring(String(name))) else { return nil }
        let rest = w[(k + 1)...]
        // The shell expands an unquoted `~` at the value's start and after an unquoted `:`.
        var tilde = false
        var expands = true
        for p in rest {
            if case .char("~", false) = p, expands { tilde = true }
            if case .char(":", false) = p { expands = true } else { expands = false }
        }
        return (String(name), collapse(rest), tilde)
    }

    private func collapse(_ pieces: ArraySlice<Piece>) -> [ValuePart] {
        var parts: [ValuePart] = []
        var text = String.UnicodeScalarView()
        for p in pieces {
            switch p {
            case let .char(c, _): text.append(c)
            case let .setting(n):
                if !text.isEmpty { parts.append(.literal(String(text))); text = .init() }
                parts.append(.setting(n))
            }
        }
        if !text.isEmpty || parts.isEmpty { parts.append(.literal(String(text))) }
        return parts
    }

    /// A word made only of literal characters.
    private func literal(_ w: Word) -> String? {
        var out = String.UnicodeScalarView()
        for p in w {
            guard case let .char(c, _) = p else { return nil }
            out.append(c)
        }
        return String(out)
    }

    private func plain(_ w: Word) -> String? {
        var out = String.UnicodeScalarView()
        for p in w {
            guard case let .char(c, false) = p else { return nil }
            out.append(c)
        }
        return String(out)
    }

    private func handle(_ words: [Word], line l: Int, into result: inout Result) throws {
        guard let first = words.first else { return }
        var rest = words[...]
        let keyword = plain(first)
        if keyword == "export" || keyword == "readonly" {
            rest = words.dropFirst()
            for w in rest {
                if let a = splitAssignment(w) { try assign(a, line: l, into: &result); continue }
                if let n = plain(w), SettingName.isIdentifier(Substring(n)) { continue }
                throw fail("'\(keyword!)' takes only NAME or NAME=VALUE words here", at: l)
            }
            return
        }
        if keyword == "template" {
            guard kind == .template else {
                throw fail(kind == .catalogEntry ? "'template' lines do not belong in a catalog entry; set vm_* lines"
                                                 : "'template' lines belong in vm.settings or template files, not in vmtools.conf", at: l)
            }
            var names: [String] = []
            for w in words.dropFirst() {
                guard let n = literal(w), SettingName.isTemplateName(n) else {
                    throw fail("invalid template name '\(SettingsText.visible(literal(w) ?? "…"))' (letters, digits and _ only)", at: l)
                }
                names.append(n)
            }
            guard !names.isEmpty else { throw fail("'template' needs at least one template name", at: l) }
            result.statements.append(.template(names: names, line: l))
            return
        }
        if keyword == "parent" {
            throw fail(kind == .template ? "a template must not contain a 'parent' line"
                       : kind == .catalogEntry ? "'parent' lines do not belong in a catalog entry"
                       : "'parent' lines belong in vm.settings, not in vmtools.conf", at: l)
        }
        for w in rest {
            guard let a = splitAssignment(w) else {
                let shown = literal(w).map { "'\(SettingsText.visible(SettingsText.clip($0)))'" } ?? "this line"
                throw fail("\(shown) is a shell command, not a NAME=VALUE assignment; vmtools reads settings files as data", at: l)
            }
            try assign(a, line: l, into: &result)
        }
    }

    private func assign(_ a: (name: String, value: [ValuePart], tilde: Bool), line l: Int, into result: inout Result) throws {
        guard SettingName.isSetting(Substring(a.name)) || (kind == .catalogEntry && a.name.hasPrefix("image_")) else {
            result.ignored.append((a.name, l))
            return
        }
        if a.tilde {
            throw fail("\(a.name): an unquoted '~' at the start or after ':' needs a shell to expand; quote it or write the full path", at: l)
        }
        for case let .literal(t) in a.value where t.contains("\n") || t.contains("\r\n") {
            throw fail("\(a.name): newline characters are not allowed in values", at: l)
        }
        result.statements.append(.assign(name: a.name, value: a.value, line: l))
    }
}

extension ConfigFileParser.Result: Equatable {
    public static func == (a: Self, b: Self) -> Bool {
        a.statements == b.statements && a.ignored.map(\.name) == b.ignored.map(\.name)
    }
}
