/// What a snapshot may be called (vmsnap(1), NAMES): a word QEMU's snapshot
/// tags hold, that is also a plain file name in `snapshots/`, and that
/// `qemu-img snapshot` cannot mistake for a numeric snapshot id.
public enum SnapshotName {
    public static let maxLength = 100

    /// Why `name` cannot be a snapshot's name, or nil when it can.
    public static func problem(_ name: String) -> String? {
        let scalars = name.unicodeScalars
        guard !scalars.isEmpty else { return "a snapshot name cannot be empty" }
        guard scalars.count <= maxLength else { return "a snapshot name has at most \(maxLength) characters" }
        guard scalars.allSatisfy(isAllowed) else {
            return "a snapshot name holds only letters, digits and . _ + - (A-Z a-z 0-9)"
        }
        // `.`, `..` and hidden names (snapshots/.resume) are not plain names; `-` reads as an option.
        if let first = scalars.first, first == "." || first == "-" { return "a snapshot name cannot start with '\(first)'" }
        // qemu-img and QEMU look a snapshot up by id or by tag: `1` could name another one.
        guard !scalars.allSatisfy({ $0.value >= 0x30 && $0.value <= 0x39 }) else {
            return "a snapshot name cannot be all digits (qemu takes it for a snapshot id)"
        }
        return nil
    }

    /// Throws a one-line error naming the VM home when `name` cannot be a
    /// snapshot's name.
    public static func check(_ name: String, home: String) throws {
        if let why = problem(name) { throw VMToolsError(.failure, home, "'\(name)': \(why)") }
    }

    static func isAllowed(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x41...0x5A, 0x61...0x7A, 0x30...0x39: return true
        default: return s == "." || s == "_" || s == "+" || s == "-"
        }
    }
}
