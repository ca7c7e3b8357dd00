/// Checks the raw bytes of a settings, template or configuration file before
/// any parsing: text must be UTF-8 without NUL bytes. Errors name the line.
enum SettingsText {
    static let maximumSize = 4 << 20

    static func validate(_ bytes: [UInt8], path: String) throws -> String {
        var line = 1
        var i = 0
        let n = bytes.count
        while i < n {
            let b = bytes[i]
            if b == 0x0A { line += 1; i += 1; continue }
            if b == 0 { throw VMToolsError.file(path, line: line, "contains a NUL byte; settings files are text") }
            if b < 0x80 { i += 1; continue }
            let len: Int
            let minimum: UInt32
            switch b {
            case 0xC2...0xDF: len = 2; minimum = 0x80
            case 0xE0...0xEF: len = 3; minimum = 0x800
            case 0xF0...0xF4: len = 4; minimum = 0x10000
            default: throw VMToolsError.file(path, line: line, "invalid UTF-8 byte 0x\(hexByte(b)); settings files must be UTF-8 text")
            }
            guard i + len <= n else {
                throw VMToolsError.file(path, line: line, "truncated UTF-8 sequence; settings files must be UTF-8 text")
            }
            var v = UInt32(b) & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07)
            for k in 1..<len {
                let c = bytes[i + k]
                guard c & 0xC0 == 0x80 else {
                    throw VMToolsError.file(path, line: line, "invalid UTF-8 sequence; settings files must be UTF-8 text")
                }
                v = v << 6 | UInt32(c & 0x3F)
            }
            guard v >= minimum, v <= 0x10FFFF, !(0xD800...0xDFFF).contains(v) else {
                throw VMToolsError.file(path, line: line, "invalid UTF-8 sequence; settings files must be UTF-8 text")
            }
            i += len
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Text from a file made safe to print in a message: control characters
    /// (a stray `\r` above all, which would rewind the terminal line) shown
    /// as escapes.
    static func visible(_ text: String) -> String { text.escapingControlCharacters }

    /// At most 80 characters of `text`, for quoting a line in a message.
    static func clip<S: StringProtocol>(_ text: S) -> String {
        text.count > 80 ? String(text.prefix(77)) + "..." : String(text)
    }

    static func read(_ path: String) throws -> String {
        try validate(FileSystem.readBytes(path, limit: maximumSize), path: path)
    }
}

/// Setting names: `cfg_`/`vm_` followed by `[A-Za-z0-9_]+`.
package enum SettingName {
    /// `vm_storage_hdd1_backend`, `vm_storage_cdrom2_backend` …: a disk's image.
    package static func isStorageBackend(_ name: String) -> Bool { name.hasPrefix("vm_storage_") && name.hasSuffix("_backend") }

    package static func isSafe(_ s: Substring) -> Bool {
        !s.isEmpty && s.unicodeScalars.allSatisfy { c in
            switch c {
            case "a"..."z", "A"..."Z", "0"..."9", "_": return true
            default: return false
            }
        }
    }

    static func isIdentifier(_ s: Substring) -> Bool {
        guard let f = s.unicodeScalars.first, !("0"..."9").contains(f) else { return false }
        return isSafe(s)
    }

    package static func isSetting(_ s: Substring) -> Bool {
        // Byte prefixes: Character-based hasPrefix dominated reading long files.
        (s.hasASCIIPrefix("vm_") && isSafe(s.dropFirst(3))) || (s.hasASCIIPrefix("cfg_") && isSafe(s.dropFirst(4)))
    }

    /// `vm_networking_iface<N>_(device|enable|forward|mac|mode)`, anchored at both ends.
    package static func isInterfaceSetting(_ s: String) -> Bool {
        guard s.hasPrefix("vm_networking_iface") else { return false }
        let rest = s.dropFirst("vm_networking_iface".count)
        let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
        guard !digits.isEmpty else { return false }
        let suffix = rest.dropFirst(digits.count)
        return ["_device", "_enable", "_forward", "_mac", "_mode"].contains(String(suffix))
    }

    /// `vm_storage_hdd<N>_(backend|createsize|enable|preallocation|size)` and
    /// `vm_storage_cdrom<N>_(backend|enable)`: drives are numbered without limit.
    static func isDriveSetting(_ s: String) -> Bool {
        for (prefix, suffixes) in [("vm_storage_hdd", ["_backend", "_createsize", "_enable", "_preallocation", "_size"]), ("vm_storage_cdrom", ["_backend", "_enable"])] where s.hasPrefix(prefix) {
            let rest = s.dropFirst(prefix.count)
            let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
            if !digits.isEmpty, suffixes.contains(String(rest.dropFirst(digits.count))) { return true }
        }
        return false
    }

    package static func isTemplateName(_ s: String) -> Bool { isSafe(Substring(s)) }
}
