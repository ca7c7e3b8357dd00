#if canImport(Glibc)
import Glibc
#endif

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

    /// QEMU's own limit on the number of snapshots in one image.
    public static let maximumCount = 65536
    /// The most bytes of table read: 100-character names take some 200 bytes
    /// an entry, so thousands of snapshots fit; a planted header asking for
    /// more is refused rather than read.
    public static let maximumTableSize = 4 << 20
    /// An entry's fixed part, before its extra data, id and name.
    static let fixedEntrySize = 40

    /// The header fields that locate the table (qcow2 versions 2 and 3
    /// alike): `nb_snapshots` at 60, `snapshots_offset` at 64.
    public struct Location: Sendable, Equatable {
        public var count: Int
        public var offset: UInt64
    }

    /// The table's place from a probe's head; nil when the head is not a
    /// qcow2 header. The count is what `vminfo` shows without reading the
    /// table (`ImageProbe.qcow2SnapshotCount`).
    static func location(_ probe: ImageProbe) -> Location? {
        guard case .qcow2(let version) = probe.kind, version == 2 || version == 3, probe.head.count >= 72 else { return nil }
        return Location(count: Int(probe.field(60, 4)), offset: probe.field(64, 8))
    }

    /// The snapshots of the qcow2 image at `path`, in table order; an
    /// empty list for an image without any. Throws naming `path` for a file
    /// that is not qcow2 or whose table is damaged or beyond the bounds.
    public static func read(_ path: String) throws -> [Entry] {
        let fd = try FileSystem.openForReading(path)
        defer { close(fd) }
        guard let probe = ImageProbe(fd: fd) else { throw VMToolsError(.failure, path, "cannot read: \(FileSystem.errnoMessage())") }
        guard let location = location(probe) else { throw VMToolsError(.failure, path, "is not a qcow2 image (version 2 or 3)") }
        return try read(fd: fd, location: location, path: path)
    }

    static func read(fd: Int32, location: Location, path: String) throws -> [Entry] {
        func damaged(_ why: String) -> VMToolsError { VMToolsError(.failure, path, "damaged qcow2 snapshot table: \(why)") }
        let count = location.count, offset = location.offset
        guard count > 0 else { return [] }
        guard count <= maximumCount else { throw damaged("\(count) snapshots, more than qemu allows (\(maximumCount))") }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw VMToolsError(.failure, path, "cannot read: \(FileSystem.errnoMessage())") }
        // A block device's st_size is 0: its size is where lseek(SEEK_END) lands.
        let size = st.st_mode & S_IFMT == S_IFBLK ? UInt64(max(lseek(fd, 0, SEEK_END), 0)) : UInt64(max(st.st_size, 0))
        guard offset % 8 == 0, offset >= 72, offset < size else { throw damaged("the table's offset \(offset) lies outside the file") }
        let available = Int(min(size - offset, UInt64(maximumTableSize)))
        guard count * fixedEntrySize <= available else {
            throw damaged(size - offset < UInt64(count * fixedEntrySize) ? "\(count) snapshots do not fit in the file"
                          : "\(count) snapshots take more than \(maximumTableSize >> 20) MiB")
        }
        // One read in the usual case: a generous guess at the table's size,
        // extended only for entries longer than the guess.
        var table = Table(fd: fd, offset: Int(offset), available: available)
        try table.need(min(available, max(4096, count * 256)), path: path)
        var entries: [Entry] = []
        entries.reserveCapacity(count)
        var at = 0
        for _ in 0..<count {
            try table.need(at + fixedEntrySize, path: path)
            let b = table.bytes
            func field(_ o: Int, _ n: Int) -> UInt64 { ImageProbe.bigEndian(b[at + o..<at + o + n]) }
            let idSize = Int(field(12, 2)), nameSize = Int(field(14, 2))
            let date = Int64(field(16, 4)), clock = field(24, 8)
            var vmState = field(32, 4)
            let extraSize = Int(field(36, 4))
            guard extraSize <= available else { throw damaged("an entry's extra data is \(extraSize) bytes") }
            let end = at + fixedEntrySize + extraSize + idSize + nameSize
            try table.need(end, path: path)
            let extra = at + fixedEntrySize
            // qcow2 v3 keeps the full size in the extra data (the 32-bit field is only its low part).
            if extraSize >= 8 { vmState = ImageProbe.bigEndian(table.bytes[extra..<extra + 8]) }
            let idStart = extra + extraSize, nameStart = idStart + idSize
            let id = String(decoding: table.bytes[idStart..<nameStart], as: UTF8.self)
            let name = String(decoding: table.bytes[nameStart..<end], as: UTF8.self)
            entries.append(Entry(id: id, name: name, date: date, vmClockNanos: clock, vmStateSize: vmState))
            at = (end + 7) / 8 * 8
        }
        return entries
    }

    /// The table region as far as it has been read.
    struct Table {
        let fd: Int32
        let offset: Int
        /// Bytes of file from `offset` that may be read (bounded).
        let available: Int
        var bytes: [UInt8] = []

        /// Reads on until `count` bytes are there; the table's bounds and
        /// the file's end are damage.
        mutating func need(_ count: Int, path: String) throws {
            guard count > bytes.count else { return }
            guard count <= available else {
                throw VMToolsError(.failure, path, "damaged qcow2 snapshot table: it runs past the end of the file or beyond \(Qcow2SnapshotTable.maximumTableSize >> 20) MiB")
            }
            // Grow by doubling, so long entries cost few reads.
            let target = min(available, max(count, bytes.count * 2))
            guard let more = FileSystem.readBytes(fd, at: offset + bytes.count, count: target - bytes.count) else {
                throw VMToolsError(.failure, path, "cannot read the snapshot table: \(FileSystem.errnoMessage())")
            }
            bytes += more
            guard bytes.count >= count else {
                throw VMToolsError(.failure, path, "damaged qcow2 snapshot table: it runs past the end of the file")
            }
        }
    }
}

extension ImageProbe {
    /// How many internal snapshots a qcow2 image's header counts (nil for
    /// another format): `vminfo` shows it from the probe it makes anyway.
    public var qcow2SnapshotCount: Int? { Qcow2SnapshotTable.location(self)?.count }
}
