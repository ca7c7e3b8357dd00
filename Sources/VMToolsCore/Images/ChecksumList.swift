/// A distribution's checksum file (vmimage(1), DOWNLOADS): GNU
/// `HEX  NAME` / `HEX *NAME` lines (Debian's SHA512SUMS, Ubuntu's
/// SHA256SUMS), BSD `SHA256 (NAME) = HEX` lines (Fedora's, AlmaLinux's and
/// Rocky's CHECKSUM), comments, and the clear-signed form of either. Data
/// from the network: bounded, and a line it does not understand is skipped.
public struct ChecksumList: Sendable, Equatable {
    /// Larger than any distribution's list (Fedora's biggest is a few KiB).
    public static let maxSize = 1 << 20

    public struct Line: Sendable, Equatable {
        public var name: String
        public var digest: ImageDigest
    }

    public var lines: [Line] = []

    /// Parses `bytes`; more than `maxSize` is an error naming `source` (the URL).
    public init(bytes: [UInt8], source: String) throws {
        guard bytes.count <= Self.maxSize else {
            throw VMToolsError(.failure, source, "checksum file is too large (more than \(Self.maxSize >> 20) MiB)")
        }
        self.init(text: String(decoding: bytes, as: UTF8.self))
    }

    public init(text: String) {
        for raw in Self.signedBody(text) {
            if let l = Self.parseLine(raw) { lines.append(l) }
        }
    }

    /// The digest listed for `name` (compared with the listed name's last
    /// path component, so `./x` and `*x` match `x`); the strongest algorithm
    /// when both are listed. Two different digests of one algorithm for one
    /// name is no answer at all: nil.
    public func digest(for name: String) -> ImageDigest? {
        let matching = lines.filter { $0.name == name || $0.name.lastPathComponent == name }.map(\.digest)
        for alg in [ImageDigest.Algorithm.sha512, .sha256] {
            let found = Set(matching.filter { $0.algorithm == alg })
            if found.count == 1 { return found.first }
            if found.count > 1 { return nil }
        }
        return nil
    }

    /// The lines of a clear-signed message's signed part (armor headers
    /// dropped, `- ` dash-escaping undone), or all lines of an unsigned file.
    /// Text outside the signed part is never read: it is not covered by the
    /// signature.
    static func signedBody(_ text: String) -> [Substring] {
        // "\r\n" is one Character: both line ends are split on.
        let all = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
        guard let begin = all.firstIndex(where: { $0 == "-----BEGIN PGP SIGNED MESSAGE-----" }) else { return all }
        var i = begin + 1
        while i < all.count, !all[i].isEmpty { i += 1 }  // Hash: headers up to the blank line
        var body: [Substring] = []
        i += 1
        while i < all.count, all[i] != "-----BEGIN PGP SIGNATURE-----" {
            body.append(all[i].hasPrefix("- ") ? all[i].dropFirst(2) : all[i])
            i += 1
        }
        return body
    }

    static func parseLine(_ raw: Substring) -> Line? {
        let line = raw.drop { $0 == " " || $0 == "\t" }
        guard !line.isEmpty, !line.hasPrefix("#") else { return nil }
        return parseBSD(line) ?? parseGNU(line)
    }

    /// `SHA256 (NAME) = HEX`, also OpenSSL's `SHA2-256(NAME)= HEX`.
    private static func parseBSD(_ line: Substring) -> Line? {
        guard let open = line.firstIndex(of: "("), let close = line.lastIndex(of: ")"), open < close else { return nil }
        let tag = line[..<open].trimmed(" ").uppercased()
        let alg: ImageDigest.Algorithm
        switch tag {
        case "SHA256", "SHA2-256": alg = .sha256
        case "SHA512", "SHA2-512": alg = .sha512
        default: return nil
        }
        let rest = line[line.index(after: close)...].trimmed(" ")
        guard rest.hasPrefix("=") else { return nil }
        let hex = rest.dropFirst().trimmed(" ")
        let name = String(line[line.index(after: open)..<close])
        guard !name.isEmpty, ImageDigest.isHex(hex, length: alg.hexLength) else { return nil }
        return Line(name: name, digest: ImageDigest(alg, hex: hex))
    }

    /// `HEX  NAME` (text mode) or `HEX *NAME` (binary); the algorithm from
    /// the length of HEX; a leading `\` marks an escaped name (coreutils).
    private static func parseGNU(_ line: Substring) -> Line? {
        var l = line
        let escaped = l.hasPrefix("\\")
        if escaped { l = l.dropFirst() }
        guard let space = l.firstIndex(of: " ") else { return nil }
        let hex = String(l[..<space])
        let alg: ImageDigest.Algorithm
        switch hex.utf8.count {
        case 64: alg = .sha256
        case 128: alg = .sha512
        default: return nil
        }
        guard ImageDigest.isHex(hex, length: alg.hexLength) else { return nil }
        var name = l[l.index(after: space)...]
        if name.hasPrefix(" ") || name.hasPrefix("*") { name = name.dropFirst() }
        var n = String(name)
        if escaped { n = unescape(n) }
        guard !n.isEmpty else { return nil }
        return Line(name: n, digest: ImageDigest(alg, hex: hex))
    }

    private static func unescape(_ s: String) -> String {
        var out = "", pending = false
        for c in s {
            if pending {
                out.append(c == "n" ? "\n" : c)
                pending = false
            } else if c == "\\" {
                pending = true
            } else {
                out.append(c)
            }
        }
        return out
    }
}

private extension StringProtocol {
    func trimmed(_ set: Character) -> String {
        var s = Substring(self)
        while s.first == set { s = s.dropFirst() }
        while s.last == set { s = s.dropLast() }
        return String(s)
    }
}
