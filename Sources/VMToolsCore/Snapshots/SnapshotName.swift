/// What a snapshot may be called (vmsnap(1), NAMES): a word QEMU's snapshot
/// tags hold, that is also a plain file name in `snapshots/`, and that
/// `qemu-img snapshot` cannot mistake for a numeric snapshot id.
public enum SnapshotName {
    public static let maxLength = 100

    /// Throws a one-line error naming the VM home when `name` cannot be a
    /// snapshot's name.
    public static func check(_ name: String, home: String) throws {
        throw VMToolsError(.failure, home, "snapshot names are not checked yet")
    }
}
