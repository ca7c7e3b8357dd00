/// Just enough XML for OVF descriptors: elements by local name (prefixes
/// dropped), attributes by local name, text, the five predefined entities
/// and numeric references. No DTDs, so no entity expansion to abuse.
package struct XMLText: Sendable {
    package var name: String
    package var attributes: [String: String] = [:]
    package var children: [XMLText] = []
    package var text = ""

    package func first(_ name: String) -> XMLText? { children.first { $0.name == name } }
    package func all(_ name: String) -> [XMLText] { children.filter { $0.name == name } }

    /// Text or (`attribute`) a quoted attribute value: quotes, tabs and
    /// newlines as references there, a CR everywhere (a parser would turn
    /// a raw one into a newline); what XML 1.0 cannot carry even as a
    /// reference (other C0 controls, U+FFFE, U+FFFF) becomes U+FFFD.
    package static func escape(_ s: String, attribute: Bool = false) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "'" where attribute: out += "&apos;"
            case "\"" where attribute: out += "&quot;"
            case "\n" where attribute: out += "&#10;"
            case "\t" where attribute: out += "&#9;"
            case "\r": out += "&#13;"
            case "\n", "\t": out.unicodeScalars.append(c)
            default:
                if isXMLChar(c) { out.unicodeScalars.append(c) } else { out += "\u{FFFD}" }
            }
        }
        return out
    }

    /// XML 1.0's `Char`: TAB, LF, CR, U+0020–U+D7FF, U+E000–U+FFFD, and
    /// everything above U+FFFF (Swift strings hold no surrogates).
    package static func isXMLChar(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09, 0x0A, 0x0D, 0x20...0xD7FF, 0xE000...0xFFFD, 0x10000...0x10FFFF: return true
        default: return false
        }
    }

    /// The body of a `<!-- … -->` comment, well-formed for any text: no
    /// `--` anywhere (a space goes between two hyphens), no `-` at the end,
    /// no character XML 1.0 forbids (U+FFFD instead), one line.
    package static func comment(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            if c == "-", out.unicodeScalars.last == "-" { out += " " }
            switch c {
            case "\n", "\r", "\t": out += " "
            default: if isXMLChar(c) { out.unicodeScalars.append(c) } else { out += "\u{FFFD}" }
            }
        }
        if out.hasSuffix("-") { out += " " }
        return out
    }

    static func unescape(_ s: Substring) -> String {
        guard s.contains("&") else { return String(s) }
        var out = ""
        var i = s.startIndex
        while i < s.endIndex {
            if s[i] == "&", let semi = s[i...].firstIndex(of: ";") {
                let entity = s[s.index(after: i)..<semi]
                var scalar: Unicode.Scalar?
                switch entity {
                case "amp": scalar = "&"
                case "lt": scalar = "<"
                case "gt": scalar = ">"
                case "quot": scalar = "\""
                case "apos": scalar = "'"
                default:
                    if entity.hasPrefix("#x") { scalar = UInt32(entity.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init) }
                    else if entity.hasPrefix("#") { scalar = UInt32(entity.dropFirst()).flatMap(Unicode.Scalar.init) }
                }
                if let scalar {
                    out.unicodeScalars.append(scalar)
                    i = s.index(after: semi)
                    continue
                }
            }
            out.append(s[i])
            i = s.index(after: i)
        }
        return out
    }

    static func localName(_ s: Substring) -> String { String(s.split(separator: ":").last ?? s) }

    /// The root element, or nil when the text is not well-formed enough to read.
    package static func parse(_ text: String) -> XMLText? { try? read(text) }

    /// Why a text could not be read (`read`).
    package struct ParseError: Error, Sendable, CustomStringConvertible {
        package var description: String
    }

    /// Elements nest at most this deep, and a document holds at most
    /// `maximumElements`: a tree's copy and release recurse, so 200,000
    /// nested elements would overflow the stack. An OVF nests about six.
    package static let maximumDepth = 64
    package static let maximumElements = 100_000

    /// The root element; throws when the text is not well-formed enough to
    /// read, nests too deep or holds too many elements.
    package static func read(_ text: String) throws(ParseError) -> XMLText {
        let malformed = ParseError(description: "not well-formed XML")
        var stack: [XMLText] = []
        var elements = 0
        var root: XMLText?
        var s = Substring(text)
        while let lt = s.firstIndex(of: "<") {
            if !stack.isEmpty { stack[stack.count - 1].text += unescape(s[..<lt]) }
            s = s[lt...]
            if s.hasPrefix("<!--") {
                guard let end = s.firstRange(of: "-->") else { throw malformed }
                s = s[end.upperBound...]
                continue
            }
            if s.hasPrefix("<![CDATA[") {
                guard let end = s.firstRange(of: "]]>") else { throw malformed }
                if !stack.isEmpty { stack[stack.count - 1].text += s[s.index(s.startIndex, offsetBy: 9)..<end.lowerBound] }
                s = s[end.upperBound...]
                continue
            }
            if s.hasPrefix("<?") || s.hasPrefix("<!") {
                guard let end = s.firstIndex(of: ">") else { throw malformed }
                s = s[s.index(after: end)...]
                continue
            }
            // A tag: '>' inside a quoted attribute value does not end it.
            var quote: Character?
            var end: Substring.Index?
            var i = s.index(after: s.startIndex)
            while i < s.endIndex {
                let c = s[i]
                if let q = quote { if c == q { quote = nil } } else if c == "\"" || c == "'" { quote = c } else if c == ">" { end = i; break }
                i = s.index(after: i)
            }
            guard let end else { throw malformed }
            var body = s[s.index(after: s.startIndex)..<end]
            s = s[s.index(after: end)...]
            if body.hasPrefix("/") {
                guard var done = stack.popLast(), done.name == localName(body.dropFirst().prefix { !$0.isWhitespace }) else { throw malformed }
                done.text = String(Substring(done.text).trimmingWhitespace())
                if stack.isEmpty { root = done; break }
                stack[stack.count - 1].children.append(done)
                continue
            }
            elements += 1
            guard elements <= maximumElements else { throw ParseError(description: "more than \(maximumElements) XML elements") }
            let selfClosing = body.hasSuffix("/")
            if selfClosing { body = body.dropLast() }
            let tagName = body.prefix { !$0.isWhitespace }
            var node = XMLText(name: localName(tagName))
            var rest = body.dropFirst(tagName.count)
            while let eq = rest.firstIndex(of: "=") {
                let key = rest[..<eq].trimmingWhitespace()
                var after = rest[rest.index(after: eq)...].drop { $0.isWhitespace }
                guard let q = after.first, q == "\"" || q == "'" else { throw malformed }
                after = after.dropFirst()
                guard let close = after.firstIndex(of: q) else { throw malformed }
                if !key.hasPrefix("xmlns") { node.attributes[localName(key)] = unescape(after[..<close]) }
                rest = after[after.index(after: close)...]
            }
            if selfClosing {
                if stack.isEmpty { root = node; break }
                stack[stack.count - 1].children.append(node)
            } else {
                guard stack.count < maximumDepth else { throw ParseError(description: "XML elements nested more than \(maximumDepth) deep") }
                stack.append(node)
            }
        }
        guard let root else { throw malformed }
        return root
    }
}

extension Substring {
    fileprivate func trimmingWhitespace() -> Substring {
        let start = drop { $0.isWhitespace }
        var end = start.endIndex
        while end > start.startIndex, start[start.index(before: end)].isWhitespace { end = start.index(before: end) }
        return start[start.startIndex..<end]
    }
}
