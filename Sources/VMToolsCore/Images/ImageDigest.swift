/// A verified image's identity (vmimage(1)): `sha256:HEX` or `sha512:HEX`,
/// lower-case hex of the whole file.
public struct ImageDigest: Sendable, Hashable, CustomStringConvertible {
    public enum Algorithm: String, Sendable, CaseIterable {
        case sha256, sha512
        /// Hex digits in a digest of this algorithm.
        public var hexLength: Int { self == .sha256 ? 64 : 128 }
    }

    public var algorithm: Algorithm
    public var hex: String

    public init(_ algorithm: Algorithm, hex: String) {
        self.algorithm = algorithm
        self.hex = hex.lowercased()
    }

    /// `sha256:HEX`/`sha512:HEX`; nil for anything else.
    public init?(parsing text: String) {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, let a = Algorithm(rawValue: String(parts[0]).lowercased()) else { return nil }
        self.init(a, hex: String(parts[1]))
        guard Self.isHex(hex, length: a.hexLength) else { return nil }
    }

    public static func isHex(_ s: String, length: Int) -> Bool {
        s.utf8.count == length && s.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) || (0x41...0x46).contains($0) }
    }

    /// `sha256:HEX`, as in catalog entries and vm.settings.
    public var description: String { "\(algorithm.rawValue):\(hex)" }
}
