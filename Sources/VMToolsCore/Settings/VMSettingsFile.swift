/// The contents of one `vm.settings`, read as data (vm.settings(5) SYNTAX). The
/// file is never executed: every line must match the original's strict
/// grammar, or the whole file is refused.
public struct VMSettingsFile: Equatable, Sendable {
    public enum Statement: Equatable, Sendable {
        case assign(name: String, value: String, line: Int)
        case template(names: [String], line: Int)
        case parent(path: String, line: Int)
    }

    public var path: String
    public var statements: [Statement] = []
    /// Things worth telling the user that do not stop the load.
    public var warnings: [String] = []

    public var parent: String? {
        for case let .parent(p, _) in statements { return p }
        return nil
    }

    public var templates: [String] {
        var names: [String] = []
        var seen: Set<String> = []
        for case let .template(list, _) in statements {
            for n in list where seen.insert(n).inserted { names.append(n) }
        }
        return names
    }

    /// The file's own assignments, later ones winning, in first-seen order.
    public var assignments: [(name: String, value: String)] {
        var order: [String] = []
        var values: [String: String] = [:]
        for case let .assign(n, v, _) in statements {
            if values[n] == nil { order.append(n) }
            values[n] = v
        }
        return order.map { ($0, values[$0]!) }
    }

    public func value(_ name: String) -> String? {
        var found: String?
        for case let .assign(n, v, _) in statements where n == name { found = v }
        return found
    }

    /// A `vm.settings` that is a symbolic link is refused unread: parse
    /// errors quote the offending line, and a VM directory from elsewhere
    /// would have one quote `~/.ssh/id_ed25519` (vmtools(7), SECURITY). Writes
    /// rename over the file, so a link never worked as a shared one anyway.
    public static func read(_ path: String) throws -> VMSettingsFile {
        try refuseLink(path)
        return try parse(SettingsText.read(path), path: path)
    }

    /// The refusal of `read`, for a caller that looks before it reads.
    public static func refuseLink(_ path: String) throws {
        guard FileSystem.isSymlink(path) else { return }
        throw VMToolsError(.failure, path, "refusing a symbolic link: a VM's settings are read only from a file in its home (copy the file there)")
    }

    public static func parse(_ text: String, path: String) throws -> VMSettingsFile {
        var file = VMSettingsFile(path: path)
        var errors: [(line: Int, error: VMToolsError)] = []
        var afterTemplate = false
        var parentLine: Int?
        var number = 0
        // Split on scalars: "\r\n" is one Character, and CRLF files must load.
        for raw in text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let line = trim(Substring(raw))
            if line.isEmpty || line.hasASCIIPrefix("#") { continue }
            do {
                if afterTemplate, SettingName.isSafe(line),
                   !line.hasASCIIPrefix("vm_"), line != "template", line != "parent" {
                    // The original wrote several templates one per line; read them back.
                    file.appendTemplates([String(line)], line: number, merge: true)
                    continue
                }
                afterTemplate = false
                if line.hasASCIIPrefix("vm_") || line.hasASCIIPrefix("cfg_"), let eq = line.utf8.firstIndex(of: UInt8(ascii: "=")) {
                    let name = line[..<eq]
                    let valueText = line[line.utf8.index(after: eq)...]
                    guard name.hasASCIIPrefix("vm_"), SettingName.isSafe(name.dropFirst(3)) else {
                        if name.hasASCIIPrefix("cfg_") {
                            throw VMToolsError.file(path, line: number, "\(SettingsText.visible(SettingsText.clip(name))): cfg_* settings belong in vmtools.conf, not in a VM's settings")
                        }
                        throw VMToolsError.file(path, line: number, "invalid setting name '\(SettingsText.visible(SettingsText.clip(name)))'")
                    }
                    let value = try decode(valueText, path: path, line: number, what: String(name))
                    if name == "vm_home" {
                        file.warnings.append("\(path):\(number): vm_home is ignored in a settings file (a VM's home is where its file is)")
                        continue
                    }
                    file.statements.append(.assign(name: String(name), value: value, line: number))
                } else if let rest = keywordArgument(line, "template") {
                    var names: [String] = []
                    for word in try words(rest, path: path, line: number) {
                        guard SettingName.isTemplateName(word) else {
                            throw VMToolsError.file(path, line: number, "invalid template name '\(SettingsText.visible(SettingsText.clip(word)))' (letters, digits and _ only)")
                        }
                        names.append(word)
                    }
                    file.appendTemplates(names, line: number, merge: false)
                    afterTemplate = true
                } else if let rest = keywordArgument(line, "parent") {
                    let p = try decode(rest, path: path, line: number, what: "parent")
                    guard !p.isEmpty else {
                        throw VMToolsError.file(path, line: number, "'parent' needs one non-empty path")
                    }
                    if let first = parentLine {
                        throw VMToolsError.file(path, line: number, "a second 'parent' line (the first is line \(first)); a VM has one parent")
                    }
                    parentLine = number
                    file.statements.append(.parent(path: p, line: number))
                } else {
                    throw VMToolsError.file(path, line: number, "invalid line '\(clip(line))': expected vm_NAME=VALUE, 'template NAME…' or 'parent PATH'")
                }
            } catch let e as VMToolsError {
                errors.append((number, e))
            }
        }
        if var first = errors.first?.error {
            if errors.count > 1 {
                let others = errors.dropFirst().map { String($0.line) }.joined(separator: ", ")
                first.message += " (also invalid: line\(errors.count > 2 ? "s" : "") \(others))"
            }
            throw first
        }
        return file
    }

    private mutating func appendTemplates(_ names: [String], line: Int, merge: Bool) {
        if merge, case let .template(existing, l)? = statements.last {
            statements[statements.count - 1] = .template(names: existing + names, line: l)
            return
        }
        statements.append(.template(names: names, line: line))
    }

    static func trim(_ s: Substring) -> Substring {
        var t = s.unicodeScalars
        while let f = t.first, isSpace(f) { t.removeFirst() }
        while let l = t.last, isSpace(l) { t.removeLast() }
        return Substring(t)
    }

    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        c == " " || c == "\t" || c == "\r" || c == "\u{0B}" || c == "\u{0C}"
    }

    private static func keywordArgument(_ line: Substring, _ keyword: String) -> Substring? {
        guard line.hasASCIIPrefix(keyword) else { return nil }
        let rest = line.dropFirst(keyword.count)
        guard let f = rest.unicodeScalars.first, f == " " || f == "\t" else { return nil }
        return trim(rest)
    }

    private static func decode(_ text: Substring, path: String, line: Int, what: String) throws -> String {
        do {
            return try ExtendedString.decode(text, assignment: what.hasPrefix("vm_"))
        } catch .unterminatedQuote {
            throw VMToolsError.file(path, line: line, "\(what): unterminated single quote")
        } catch .tilde {
            throw VMToolsError.file(path, line: line, "\(what): an unquoted '~' at the start or after ':' is a home directory to the shell; quote it or write the full path")
        } catch let .invalidCharacter(c) {
            let scalar = c.unicodeScalars.first!
            let shown = c == "\t" ? "tab" : c == " " ? "space"
                : scalar.value < 0x20 || scalar.value == 0x7f ? "control character U+\(String(scalar.value, radix: 16, uppercase: true))" : "'\(c)'"
            let printable = scalar.value >= 0x20 && scalar.value != 0x7f
            let example = what.hasPrefix("vm_") && printable ? " (for example \(what)=\(ExtendedString.encode("a\(c)b")))" : ""
            throw VMToolsError.file(path, line: line, "\(what): \(shown) must be inside single quotes\(example); values are data, never shell code")
        }
    }

    /// Space-separated extended strings, each decoded on its own.
    private static func words(_ text: Substring, path: String, line: Int) throws -> [String] {
        var result: [String] = []
        var current = Substring()
        var start = text.startIndex
        var inQuote = false
        var idx = text.startIndex
        while idx < text.endIndex {
            let c = text[idx]
            if c == "'" { inQuote.toggle() }
            if !inQuote, c == " " || c == "\t" {
                current = text[start..<idx]
                if !current.isEmpty { result.append(try decode(current, path: path, line: line, what: "template")) }
                start = text.index(after: idx)
            }
            idx = text.index(after: idx)
        }
        current = text[start...]
        if !current.isEmpty { result.append(try decode(current, path: path, line: line, what: "template")) }
        return result
    }

    private static func clip(_ s: Substring) -> String {
        SettingsText.visible(SettingsText.clip(s))
    }
}

extension Substring {
    /// `hasPrefix` on bytes: the Character-based one dominated the reading
    /// of a long file (grapheme breaking on every line).
    func hasASCIIPrefix(_ prefix: String) -> Bool { utf8.starts(with: prefix.utf8) }
}
