/// A small JSON value with ordered objects: vminfo's output keeps a stable,
/// readable key order, and qemu-img's output is read without full Foundation.
public indirect enum JSON: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    public static func == (a: JSON, b: JSON) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    public subscript(key: String) -> JSON? {
        guard case let .object(pairs) = self else { return nil }
        return pairs.first { $0.0 == key }?.1
    }

    public var stringValue: String? { if case let .string(s) = self { return s } else { return nil } }
    public var numberValue: Double? { if case let .number(n) = self { return n } else { return nil } }
    /// A whole number that fits an Int, else nil: `Int(1e300)` traps, and a
    /// peer (a guest agent, another user's QEMU) chooses its numbers.
    public var integerValue: Int? {
        guard case let .number(n) = self, n.isFinite, n == n.rounded(.towardZero), abs(n) < 0x1p63 else { return nil }
        return Int(exactly: n)
    }
    public var arrayValue: [JSON]? { if case let .array(a) = self { return a } else { return nil } }

    public static func string(_ s: String?) -> JSON { s.map { .string($0) } ?? .null }

    // MARK: Writing

    public func serialized(indent: Int = 0, pretty: Bool = true) -> String {
        var out = ""
        write(to: &out, indent: indent, pretty: pretty)
        return out
    }

    private func write(to out: inout String, indent: Int, pretty: Bool) {
        let nl = pretty ? "\n" : ""
        let pad = pretty ? String(repeating: "  ", count: indent + 1) : ""
        let endPad = pretty ? String(repeating: "  ", count: indent) : ""
        switch self {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .number(n):
            // JSON has no NaN or infinity.
            if !n.isFinite { out += "null" } else if n == n.rounded(), abs(n) < 1e15 { out += String(Int64(n)) } else { out += "\(n)" }
        case let .string(s): Self.quote(s, into: &out)
        case let .array(items):
            if items.isEmpty { out += "[]"; return }
            out += "[" + nl
            for (k, item) in items.enumerated() {
                out += pad
                item.write(to: &out, indent: indent + 1, pretty: pretty)
                out += (k < items.count - 1 ? "," : "") + nl
            }
            out += endPad + "]"
        case let .object(pairs):
            if pairs.isEmpty { out += "{}"; return }
            out += "{" + nl
            for (k, (key, value)) in pairs.enumerated() {
                out += pad
                Self.quote(key, into: &out)
                out += pretty ? ": " : ":"
                value.write(to: &out, indent: indent + 1, pretty: pretty)
                out += (k < pairs.count - 1 ? "," : "") + nl
            }
            out += endPad + "}"
        }
    }

    package static func quote(_ s: String, into out: inout String) {
        out += "\""
        // Most strings need no escape: appended whole, not scalar by scalar
        // (vmps -w writes thousands per refresh; Benchmarks/README, Rates).
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == 0x7f || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out += s
            out += "\""
            return
        }
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if c.value < 0x20 || c.value == 0x7f {
                    let h = String(c.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(c)
                }
            }
        }
        out += "\""
    }

    // MARK: Reading

    public struct ParseError: Error, Sendable { public var offset: Int }

    /// Arrays and objects nest at most this deep: the parser recurses, and
    /// so do a value's copy, comparison and release, so 300,000 nested `[`
    /// would overflow the stack. QEMU's and the agent's answers nest a few levels.
    public static let maximumDepth = 128

    public static func parse(_ text: String) throws -> JSON {
        var p = Parser(bytes: Array(text.utf8))
        let v = try p.value()
        p.skipSpace()
        guard p.i == p.bytes.count else { throw ParseError(offset: p.i) }
        return v
    }

    private struct Parser {
        let bytes: [UInt8]
        var i = 0
        var depth = 0

        mutating func skipSpace() {
            while i < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[i]) { i += 1 }
        }

        mutating func value() throws -> JSON {
            skipSpace()
            guard i < bytes.count else { throw ParseError(offset: i) }
            switch bytes[i] {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                guard depth < JSON.maximumDepth else { throw ParseError(offset: i) }
                depth += 1
                defer { depth -= 1 }
                return try container()
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            default:
                let start = i
                while i < bytes.count, "+-0123456789.eE".utf8.contains(bytes[i]) { i += 1 }
                // 1e999 reads as infinity, which no JSON number means.
                guard let n = Double(String(decoding: bytes[start..<i], as: UTF8.self)), n.isFinite else { throw ParseError(offset: start) }
                return .number(n)
            }
        }

        mutating func container() throws -> JSON {
            switch bytes[i] {
            case UInt8(ascii: "{"):
                i += 1
                var pairs: [(String, JSON)] = []
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(pairs) }
                while true {
                    skipSpace()
                    guard case let .string(key) = try value() else { throw ParseError(offset: i) }
                    skipSpace()
                    try expect(":")
                    pairs.append((key, try value()))
                    skipSpace()
                    if try endOr(",", "}") { return .object(pairs) }
                }
            case UInt8(ascii: "["):
                i += 1
                var items: [JSON] = []
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                while true {
                    items.append(try value())
                    skipSpace()
                    if try endOr(",", "]") { return .array(items) }
                }
            default:
                throw ParseError(offset: i)
            }
        }

        mutating func expect(_ c: Character) throws {
            guard i < bytes.count, bytes[i] == c.asciiValue! else { throw ParseError(offset: i) }
            i += 1
        }

        /// True at the closing character, false after a separator.
        mutating func endOr(_ sep: Character, _ close: Character) throws -> Bool {
            guard i < bytes.count else { throw ParseError(offset: i) }
            if bytes[i] == close.asciiValue! { i += 1; return true }
            try expect(sep)
            return false
        }

        mutating func literal(_ word: String) throws {
            let w = Array(word.utf8)
            guard i + w.count <= bytes.count, Array(bytes[i..<i + w.count]) == w else { throw ParseError(offset: i) }
            i += w.count
        }

        mutating func string() throws -> String {
            i += 1
            var scalars = String.UnicodeScalarView()
            var raw: [UInt8] = []
            func flushRaw() {
                scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
                raw.removeAll()
            }
            while i < bytes.count {
                let b = bytes[i]
                if b == UInt8(ascii: "\"") {
                    i += 1
                    flushRaw()
                    return String(scalars)
                }
                if b == UInt8(ascii: "\\") {
                    flushRaw()
                    guard i + 1 < bytes.count else { break }
                    let e = bytes[i + 1]
                    i += 2
                    switch e {
                    case UInt8(ascii: "n"): scalars.append("\n")
                    case UInt8(ascii: "t"): scalars.append("\t")
                    case UInt8(ascii: "r"): scalars.append("\r")
                    case UInt8(ascii: "b"): scalars.append("\u{08}")
                    case UInt8(ascii: "f"): scalars.append("\u{0C}")
                    case UInt8(ascii: "u"):
                        var code = try hex4()
                        if (0xD800...0xDBFF).contains(code), i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") {
                            i += 2
                            let low = try hex4()
                            if (0xDC00...0xDFFF).contains(low) {
                                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                            } else {
                                // A high surrogate without its low half is no character (and `low - 0xDC00` would trap).
                                scalars.append("\u{FFFD}")
                                code = low
                            }
                        }
                        scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
                    default: scalars.append(Unicode.Scalar(e))
                    }
                    continue
                }
                raw.append(b)
                i += 1
            }
            throw ParseError(offset: i)
        }

        mutating func hex4() throws -> UInt32 {
            guard i + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[i..<i + 4], as: UTF8.self), radix: 16) else {
                throw ParseError(offset: i)
            }
            i += 4
            return v
        }
    }
}
