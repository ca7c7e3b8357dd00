/// The internal snapshots of a qcow2 image, read from its snapshot table
/// without `qemu-img` (vmsnap(1) -l must stay fast on many snapshots).
/// Bounded: a planted image cannot make the reader allocate or read much.
public enum Qcow2SnapshotTable {
    public struct Entry: Sendable, Equatable {
        /// QEMU's numeric id (a string in the table).
        public var id: String
        /// The tag: vmtools' snapshot name.
        public var name: String
        /// When it was taken, seconds since the epoch (UTC).
        public var date: Int64
        /// The guest clock at the snapshot, nanoseconds (0 for a stopped VM's).
        public var vmClockNanos: UInt64
        /// Bytes of RAM and device state saved in this image (0 if none).
        public var vmStateSize: UInt64

        public init(id: String, name: String, date: Int64, vmClockNanos: UInt64, vmStateSize: UInt64) {
            self.id = id
            self.name = name
            self.date = date
            self.vmClockNanos = vmClockNanos
            self.vmStateSize = vmStateSize
        }
    }

    /// The snapshots of the qcow2 image at `path`, in table order; an
    /// empty list for an image without any. Throws naming `path` for a file
    /// that is not qcow2 or whose table is damaged or beyond the bounds.
    public static func read(_ path: String) throws -> [Entry] {
        throw VMToolsError(.failure, path, "reading qcow2 snapshot tables is not implemented yet")
    }
}
