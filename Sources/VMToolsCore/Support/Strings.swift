extension String {
    /// Replaces every occurrence of `target` (plain text, no patterns).
    package func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty, contains(target) else { return self }
        var result = ""
        var rest = self[...]
        while let r = rest.firstRange(of: target) {
            result += rest[..<r.lowerBound]
            result += replacement
            rest = rest[r.upperBound...]
        }
        result += rest
        return result
    }

    /// `contains(needle)` on UTF-8 bytes: the generic search goes through
    /// _StringProcessing at ~17,000 instructions a call, which vmps paid
    /// per argument per VM (Benchmarks/README, Rates).
    package func containsBytes(_ needle: String) -> Bool {
        var hay = self, pin = needle
        return hay.withUTF8 { h in
            pin.withUTF8 { n in
                guard !n.isEmpty else { return true }
                guard h.count >= n.count else { return false }
                var k = 0
                while k <= h.count - n.count {
                    if h[k] == n[0] {
                        var j = 1
                        while j < n.count, h[k + j] == n[j] { j += 1 }
                        if j == n.count { return true }
                    }
                    k += 1
                }
                return false
            }
        }
    }

    package func trimmingTrailingWhitespace() -> String {
        var s = Substring(self)
        while let last = s.unicodeScalars.last, isShellBlank(last) || last == "\r" || last == "\u{0B}" || last == "\u{0C}" {
            s = s.dropLast()
        }
        return String(s)
    }

    package func leftPadded(to width: Int) -> String {
        let n = displayWidth
        return n >= width ? self : self + String(repeating: " ", count: width - n)
    }

    /// Terminal columns: East Asian wide characters take two, combining marks none.
    package var displayWidth: Int {
        var w = 0
        for scalar in unicodeScalars {
            let v = scalar.value
            if v < 0x20 { continue }
            if scalar.properties.generalCategory == .nonspacingMark || scalar.properties.generalCategory == .enclosingMark { continue }
            if (0x1100...0x115F).contains(v) || (0x2E80...0xA4CF).contains(v) || (0xAC00...0xD7A3).contains(v)
                || (0xF900...0xFAFF).contains(v) || (0xFE30...0xFE4F).contains(v) || (0xFF00...0xFF60).contains(v)
                || (0xFFE0...0xFFE6).contains(v) || (0x1F300...0x1FAFF).contains(v) || (0x20000...0x3FFFD).contains(v) {
                w += 2
            } else {
                w += 1
            }
        }
        return w
    }

    /// The last `/`-separated component, as `basename` prints it.
    package var lastPathComponent: String {
        var s = Substring(self)
        while s.count > 1, s.hasSuffix("/") { s = s.dropLast() }
        if s == "/" { return "/" }
        if let i = s.lastIndex(of: "/") { return String(s[s.index(after: i)...]) }
        return String(s)
    }

    /// The directory part, as `dirname` prints it.
    package var deletingLastPathComponent: String {
        var s = Substring(self)
        while s.count > 1, s.hasSuffix("/") { s = s.dropLast() }
        guard let i = s.lastIndex(of: "/") else { return "." }
        var d = s[..<i]
        while d.count > 1, d.hasSuffix("/") { d = d.dropLast() }
        return d.isEmpty ? "/" : String(d)
    }

    package func appendingPathComponent(_ c: String) -> String {
        if isEmpty { return c }
        return hasSuffix("/") ? self + c : self + "/" + c
    }
}

func isShellBlank(_ s: Unicode.Scalar) -> Bool { s == " " || s == "\t" }

/// POSIX shell single-quoting, for showing values and command lines.
package func shellQuote(_ s: String) -> String {
    if !s.isEmpty, s.unicodeScalars.allSatisfy({ isPlainShellWordScalar($0) }) { return s }
    guard s.unicodeScalars.contains(where: isControlScalar) else {
        return "'" + s.replacingAll("'", with: "'\\''") + "'"
    }
    // A tab or newline inside '…' would be printed escaped as `\t`, which the
    // shell then reads as two characters: ANSI-C quoting (bash, zsh, ksh and
    // POSIX.1-2024 sh) reads back exactly what was meant.
    var out = "$'"
    for c in s.unicodeScalars {
        switch c {
        case "\\": out += "\\\\"
        case "'": out += "\\'"
        case "\u{1B}": out += "\\e"
        case "\t": out += "\\t"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case _ where isControlScalar(c): out += (c.value < 0x80 ? "\\x" : "\\u00") + hexByte(UInt8(c.value))
        default: out.unicodeScalars.append(c)
        }
    }
    return out + "'"
}

private func isPlainShellWordScalar(_ c: Unicode.Scalar) -> Bool {
    switch c {
    case "a"..."z", "A"..."Z", "0"..."9", "_", "-", ".", "/", ",", ":", "=", "+", "@", "%": return true
    default: return false
    }
}

/// Lower-case hexadecimal with two digits per byte.
func hexByte(_ b: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(b >> 4)], digits[Int(b & 0xF)]])
}

extension String {
    /// Control characters made visible, so a name or path cannot move the
    /// cursor, retitle the terminal or fake a line: `\e`, `\n`, `\r`,
    /// else `\xNN` (C0 and DEL) or `\u{NN}` (C1, which some terminals obey
    /// as 8-bit escapes). A TAB stays as it is: harmless to a terminal, and
    /// scripts written for the original tool grep `vminfo` output for real
    /// paths holding one. Backslashes stay as they are, so escaping twice
    /// changes nothing.
    package var escapingControlCharacters: String {
        guard unicodeScalars.contains(where: { isControlScalar($0) && $0 != "\t" }) else { return self }
        var out = ""
        out.reserveCapacity(utf8.count + 8)
        for c in unicodeScalars {
            guard isControlScalar(c), c != "\t" else {
                out.unicodeScalars.append(c)
                continue
            }
            switch c {
            case "\u{1B}": out += "\\e"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            default:
                let hex = hexByte(UInt8(c.value))
                out += c.value < 0x80 ? "\\x" + hex : "\\u{" + hex + "}"
            }
        }
        return out
    }
}

private func isControlScalar(_ c: Unicode.Scalar) -> Bool {
    c.value < 0x20 || (0x7F...0x9F).contains(c.value)
}

/// C-locale (`LC_ALL=C sort`) order.
package func bytewiseLess(_ a: String, _ b: String) -> Bool {
    // On contiguous bytes: the generic UTF8View comparison dominated sorting
    // the names of a large settings file.
    var a = a, b = b
    return a.withUTF8 { x in
        b.withUTF8 { y in
            for i in 0..<min(x.count, y.count) where x[i] != y[i] { return x[i] < y[i] }
            return x.count < y.count
        }
    }
}
