/// A catalog entry's `image_keyring` may be ASCII-armored, as the keys of
/// distribution-gpg-keys are (vmtools(7), IMAGE CATALOG); gpgv(1) reads only
/// binary keyrings ("invalid packet (ctb=2d)"), so the verifier hands it
/// the packets this decodes.
public enum OpenPGPArmor {
    static let begin = Array("-----BEGIN PGP PUBLIC KEY BLOCK-----".utf8)
    static let end = "-----END PGP PUBLIC KEY BLOCK-----"

    /// Whether `bytes` start, after blanks, with an armored public key block.
    public static func isArmored(_ bytes: [UInt8]) -> Bool {
        bytes.drop { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }.starts(with: begin)
    }

    /// The binary packets of every armored block of `bytes`, in order; nil
    /// when `bytes` are not armored (a binary keyring: use it as it is) or a
    /// block is broken (no end line, no base64 body).
    public static func dearmor(_ bytes: [UInt8]) -> [UInt8]? {
        guard isArmored(bytes) else { return nil }
        var packets: [UInt8] = []
        var body: String?
        var inHeaders = false
        // By bytes: as Characters, "\r\n" is one and would not split at "\n".
        for raw in bytes.split(separator: 0x0A, omittingEmptySubsequences: false) {
            let line = String(decoding: raw.last == 0x0D ? raw.dropLast() : raw, as: UTF8.self)
            guard var text = body else {
                if line == "-----BEGIN PGP PUBLIC KEY BLOCK-----" { body = ""; inHeaders = true }
                continue
            }
            if line == end {
                guard !text.isEmpty, let decoded = VMSettings.base64Decode(text) else { return nil }
                packets += decoded
                body = nil
                continue
            }
            if inHeaders {
                // `Key: value` headers end at the first blank line (RFC 4880, 6.2).
                if line.contains(": ") { continue }
                inHeaders = false
                if line.isEmpty { continue }
            }
            // The `=XXXX` CRC-24 line: gpgv checks the packets themselves.
            if line.hasPrefix("=") { continue }
            text += line.filter { $0 != " " && $0 != "\t" }
            body = text
        }
        return body == nil && !packets.isEmpty ? packets : nil
    }
}
