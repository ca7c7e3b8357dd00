/// MAC addresses from a prefix (vmrndmac(1), vm.settings(5)
/// `vm_networking_default_mac`).
public enum MACAddress {
    /// Checks a prefix: 1 to 6 colon-separated pairs of hex digits, one
    /// trailing colon tolerated, multicast bit clear. Returns the groups as typed.
    public static func parsePrefix(_ prefix: String) throws -> [String] {
        var p = Substring(prefix)
        if p.hasSuffix(":") { p = p.dropLast() }
        let groups = p.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard !p.isEmpty, groups.count <= 6,
              groups.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isHexDigit) && $0.allSatisfy(\.isASCII) }) else {
            throw VMToolsError(.failure, prefix, "wrong structure for a MAC address prefix: expected 1 to 6 pairs of hex digits separated by colons, like 52:54:00")
        }
        if let low = groups[0].last?.hexDigitValue, low & 1 == 1 {
            throw VMToolsError(.failure, prefix, "the multicast bit is set (the second hex digit of the first byte must be even); a NIC needs a unicast address")
        }
        return groups
    }

    /// A complete address: the prefix as typed (case kept) plus random bytes.
    /// An empty prefix gives a random unicast, locally administered address.
    public static func random(prefix: String) throws -> String {
        if prefix.isEmpty {
            var bytes = try SystemRandom.bytes(6)
            bytes[0] = (bytes[0] & 0xFC) | 0x02
            return bytes.map(hexByte).joined(separator: ":")
        }
        let groups = try parsePrefix(prefix)
        let extra = try SystemRandom.bytes(6 - groups.count).map(hexByte)
        return (groups + extra).joined(separator: ":")
    }
}
