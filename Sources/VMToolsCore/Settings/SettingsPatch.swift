/// A few changes to a VM's own settings file, made in place: the lines that
/// hold the changed values are replaced, new values are appended, and every
/// other line — the user's comments, order and blank lines — stays as it was.
/// vmmv, vmfix and vmmerge relink VMs this way.
public struct SettingsPatch: Sendable {
    /// New values, by name (replacing every line of that name, or appended).
    public var values: [String: String] = [:]
    /// A new parent path; `.some(nil)` removes the `parent` line.
    public var parent: String?? = nil

    public init() {}

    public var isEmpty: Bool { values.isEmpty && parent == nil }

    public func apply(to file: VMSettingsFile, text: String) throws -> String {
        let encode = ExtendedString.encode
        for (name, value) in values {
            guard name.hasPrefix("vm_"), SettingName.isSetting(Substring(name)) else {
                throw VMToolsError(.failure, name, "only vm_* settings can be stored in a VM's settings")
            }
            if value.contains("\n") || value.contains("\0") { throw VMToolsError(.failure, name, "newline and NUL characters are not allowed in values") }
        }
        if case let .some(.some(p)) = parent, p.contains("\n") || p.contains("\0") {
            throw VMToolsError(.failure, "parent", "newline and NUL characters are not allowed in paths")
        }
        var lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { String($0) }
        var written = Set<String>()
        var removed = Set<Int>()
        var hadParent = false
        var firstStatement: Int?
        for statement in file.statements {
            switch statement {
            case let .assign(name, _, line):
                firstStatement = min(firstStatement ?? line, line)
                if let v = values[name] {
                    lines[line - 1] = "\(name)=\(encode(v))"
                    written.insert(name)
                }
            case let .parent(_, line):
                firstStatement = min(firstStatement ?? line, line)
                hadParent = true
                if case let .some(p) = parent {
                    if let p { lines[line - 1] = "parent \(encode(p))" } else { removed.insert(line - 1) }
                }
            case let .template(_, line):
                firstStatement = min(firstStatement ?? line, line)
            }
        }
        lines = lines.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
        if case let .some(.some(p)) = parent, !hadParent {
            // Where the writer puts it: before the first statement.
            let at = (firstStatement ?? lines.count) - 1
            lines.insert("parent \(encode(p))", at: max(0, min(at, lines.count)))
        }
        let added = values.keys.filter { !written.contains($0) }.sorted(by: bytewiseLess).map { "\($0)=\(encode(values[$0]!))" }
        if !added.isEmpty {
            if lines.last == "" { lines.removeLast() }
            lines += added + [""]
        }
        return lines.joined(separator: "\n")
    }

    /// Applies the patch to `home`'s settings file through the transaction.
    package func write(to home: String, global: GlobalConfig, _ tx: Transaction) throws {
        guard !isEmpty else { return }
        let path = global.settingsPath(in: home)
        let text = try SettingsText.read(path)
        let patched = try apply(to: try VMSettingsFile.parse(text, path: path), text: text)
        try tx.writeFile(Array(patched.utf8), to: path)
    }
}
