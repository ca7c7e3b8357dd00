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

    /// The external data file a qcow2 names (its `DATA` header extension,
    /// vm.settings(5) HOST PATHS), absolute as QEMU takes it: a relative name
    /// from the image's directory; nil for none. Only a regular file is
    /// opened (a FIFO would block), and no more than the header's first
    /// cluster, at most 64 KiB, is read.
    public static func qcow2DataFile(_ path: String) -> String? {
        guard FileSystem.isRegularFile(path), detect(path) == "qcow2", let h = header(path, count: 104) else { return nil }
        let version = bigEndian(h[4..<8])
        // The incompatible feature bit 2 says the data lives elsewhere (qcow2 v3 only).
        guard version >= 3, bigEndian(h[72..<80]) & 4 != 0 else { return nil }
        let clusterBits = bigEndian(h[20..<24]), headerLength = bigEndian(h[100..<104])
        guard (9...21).contains(clusterBits), headerLength >= 104 else { return nil }
        let limit = min(1 << Int(clusterBits), 64 << 10)
        guard let area = header(path, count: limit, allowShort: true) else { return nil }
        var offset = Int((headerLength + 7) / 8 * 8)
        while offset + 8 <= area.count {
            let type = bigEndian(area[offset..<offset + 4]), length = Int(bigEndian(area[offset + 4..<offset + 8]))
            let start = offset + 8
            guard type != 0, length <= area.count - start else { return nil }
            if type == 0x4441_5441 {
                let raw = String(decoding: area[start..<start + length], as: UTF8.self)
                guard !raw.isEmpty else { return nil }
                return raw.hasPrefix("/") ? raw : path.deletingLastPathComponent.appendingPathComponent(raw)
            }
            offset = start + (length + 7) / 8 * 8
        }
        return nil
    }

    /// The files a VMDK text descriptor names: its extents and the parent of
    /// a delta disk (`parentFileNameHint`), absolute (a relative name from the
    /// descriptor's directory, as QEMU takes it), read as an import reads
    /// them (`ImportedImage`). Only a regular file is read, at most 64 KiB; a
    /// binary (KDMV) VMDK holds its data itself.
    public static func vmdkDescriptorFiles(_ path: String) -> [String] {
        guard FileSystem.isRegularFile(path), let head = header(path, count: 64 << 10, allowShort: true),
              head.starts(with: Array("# Disk DescriptorFile".utf8)) else { return [] }
        return ImportedImage.Walk.descriptorReferences(head).map(\.name).filter { !$0.isEmpty }.map { name in
            name.hasPrefix("/") ? name : path.deletingLastPathComponent.appendingPathComponent(name)
        }
    }

    /// A qcow2's backing chain, nearest first, as `qcow2Backing` names each
    /// (at most `limit` files: a loop must end).
    public static func qcow2BackingChain(_ path: String, limit: Int = 64) -> [String] {
        var chain: [String] = []
        var current = path
        while chain.count < limit, FileSystem.isRegularFile(current), let next = qcow2Backing(current) {
            if chain.contains(next) || next == path { break }
            chain.append(next)
            current = next
        }
        return chain
    }

    private static func header(_ path: String, count: Int, allowShort: Bool = false) -> [UInt8]? {
        guard let fd = try? FileSystem.openForReading(path) else { return nil }
        defer { close(fd) }
        var h = [UInt8](repeating: 0, count: count)
        let n = h.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, count, 0) })
        if allowShort, n >= 0 { return Array(h[0..<n]) }
        return n == count ? h : nil
    }

    private static func bigEndian(_ bytes: ArraySlice<UInt8>) -> UInt64 { bytes.reduce(0) { $0 << 8 | UInt64($1) } }
}
