#if canImport(Glibc)
import Glibc
#endif

/// What a plan needs to know of a disk without running qemu-img (modules only
/// read, Docs/ARCHITECTURE.md): the qcow2 header's fields, a raw file's size.
extension ImageFormat {
    /// The size the guest sees, in bytes: a qcow2's header field, a raw
    /// regular file's length; nil for other formats or an unreadable file.
    public static func virtualSize(_ path: String) -> Int? {
        switch detect(path) {
        case "qcow2":
            guard let h = header(path, count: 32) else { return nil }
            return Int(exactly: bigEndian(h[24..<32]))
        case "raw":
            var st = stat()
            guard stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return nil }
            return Int(st.st_size)
        default:
            return nil
        }
    }

    /// The backing file a qcow2 records, absolute (a relative name is taken
    /// from the image's directory, as QEMU does); nil for none.
    public static func qcow2Backing(_ path: String) -> String? {
        guard detect(path) == "qcow2", let h = header(path, count: 20) else { return nil }
        let offset = bigEndian(h[8..<16]), length = bigEndian(h[16..<20])
        guard offset > 0, length > 0, length <= 1023, offset < 1 << 20 else { return nil }
        guard let fd = try? FileSystem.openForReading(path) else { return nil }
        defer { close(fd) }
        var name = [UInt8](repeating: 0, count: Int(length))
        guard name.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, $0.count, off_t(offset)) }) == Int(length) else { return nil }
        let raw = String(decoding: name, as: UTF8.self)
        return raw.hasPrefix("/") ? raw : path.deletingLastPathComponent.appendingPathComponent(raw)
    }

    private static func header(_ path: String, count: Int) -> [UInt8]? {
        guard let fd = try? FileSystem.openForReading(path) else { return nil }
        defer { close(fd) }
        var h = [UInt8](repeating: 0, count: count)
        return h.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, count, 0) }) == count ? h : nil
    }

    private static func bigEndian(_ bytes: ArraySlice<UInt8>) -> UInt64 { bytes.reduce(0) { $0 << 8 | UInt64($1) } }
}
