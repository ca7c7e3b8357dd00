#if canImport(Glibc)
import Glibc
#endif

/// What a file holds, by its magic bytes: the one place vmtools reads them.
/// Disk formats are named as QEMU names them, so explicit formats keep QEMU
/// from probing (and warning); a format QEMU can only take as raw (an ISO,
/// a tar) is raw to it.
public enum ImageKind: Equatable, Sendable {
    /// QEMU's qcow2, with the header's version (2 or 3).
    case qcow2(version: Int)
    /// QEMU's old qcow (version 1).
    case qcow
    /// A VMware disk: a binary sparse extent (`KDMV`) or a text descriptor.
    case vmdk(descriptor: Bool)
    case vhdx
    /// A VHD (Virtual PC): `conectix` at the start or in the last 512 bytes.
    case vpc
    case vdi
    /// An ISO 9660 file system (`CD001` at 0x8001).
    case iso
    /// A POSIX tar archive (`ustar` at 257): an `.ova`.
    case tar
    /// Anything else: QEMU takes it as bytes.
    case raw

    /// QEMU's and qemu-img's name of the format (`format=`, `-f`).
    public var format: String {
        switch self {
        case .qcow2: "qcow2"
        case .qcow: "qcow"
        case .vmdk: "vmdk"
        case .vhdx: "vhdx"
        case .vpc: "vpc"
        case .vdi: "vdi"
        case .iso, .tar, .raw: "raw"
        }
    }
}

/// One read of a file's first bytes (and, where nothing else matched, of its
/// last 512: a fixed VHD's footer), and the `ImageKind` they give. Callers
/// that need more than the kind (a qcow2 header's fields, an appliance's
/// text) read `head` rather than the file again.
public struct ImageProbe: Sendable {
    public let kind: ImageKind
    /// The file's first bytes: 4 KiB for a disk format, up to `headLength`
    /// for anything else (fewer for a short file).
    public let head: [UInt8]
    /// `head` holds the whole file: it ended before the bytes asked for.
    package let reachedEnd: Bool
    /// A regular file, not a device.
    public let isRegularFile: Bool

    /// Enough for every signature: an ISO 9660 volume descriptor at 0x8000
    /// with its label, a tar header at 257, a qcow2 header.
    public static let headLength = 0x8800
    /// What a disk format's header needs, read first: a start probes every
    /// disk, and most are qcow2.
    static let diskHeadLength = 0x1000

    /// nil when `path` cannot be opened or read (missing, a FIFO, a directory).
    public init?(_ path: String) {
        guard let fd = try? FileSystem.openForReading(path) else { return nil }
        defer { close(fd) }
        self.init(fd: fd)
    }

    /// The same, from an open file (an import checks the file it opened).
    package init?(fd: Int32) {
        guard var buffer = FileSystem.readBytes(fd, at: 0, count: Self.diskHeadLength) else { return nil }
        var asked = Self.diskHeadLength
        if buffer.count == asked, Self.diskKind(buffer) == nil {
            // Not a disk: an ISO's descriptor lies at 0x8000.
            guard let rest = FileSystem.readBytes(fd, at: asked, count: Self.headLength - asked) else { return nil }
            buffer += rest
            asked = Self.headLength
        }
        var st = stat()
        let known = fstat(fd, &st) == 0
        head = buffer
        reachedEnd = buffer.count < asked
        isRegularFile = known && st.st_mode & S_IFMT == S_IFREG
        kind = Self.kind(buffer, fd: fd, size: known ? st.st_size : 0)
    }

    /// The disk format a header's magic names, or nil.
    private static func diskKind(_ b: [UInt8]) -> ImageKind? {
        func at(_ offset: Int, _ s: String) -> Bool {
            let u = Array(s.utf8)
            return offset + u.count <= b.count && b[offset..<offset + u.count].elementsEqual(u)
        }
        if b.starts(with: [0x51, 0x46, 0x49, 0xFB]) {
            let version = b.count >= 8 ? Int(bigEndian(b[4..<8])) : 0
            return version == 1 ? .qcow : .qcow2(version: version)
        }
        if at(0, "KDMV") { return .vmdk(descriptor: false) }
        if at(0, "# Disk DescriptorFile") { return .vmdk(descriptor: true) }
        if at(0, "vhdxfile") { return .vhdx }
        if at(0, "conectix") { return .vpc }
        if b.count >= 0x44, b[0x40..<0x44].elementsEqual([0x7F, 0x10, 0xDA, 0xBE]) { return .vdi }
        return nil
    }

    private static func kind(_ b: [UInt8], fd: Int32, size: off_t) -> ImageKind {
        if let disk = diskKind(b) { return disk }
        if size >= 512, FileSystem.readBytes(fd, at: Int(size) - 512, count: 8)?.elementsEqual("conectix".utf8) == true { return .vpc }
        func at(_ offset: Int, _ s: String) -> Bool {
            let u = Array(s.utf8)
            return offset + u.count <= b.count && b[offset..<offset + u.count].elementsEqual(u)
        }
        if at(0x8001, "CD001") { return .iso }
        if at(257, "ustar") { return .tar }
        return .raw
    }

    /// A big-endian number from `bytes` (header fields); 0 past the head.
    package func field(_ offset: Int, _ length: Int) -> UInt64 {
        guard offset + length <= head.count else { return 0 }
        return Self.bigEndian(head[offset..<offset + length])
    }

    package static func bigEndian(_ bytes: ArraySlice<UInt8>) -> UInt64 { bytes.reduce(0) { $0 << 8 | UInt64($1) } }
}
