#if canImport(Glibc)
import Glibc
#endif

/// What a plan needs to know of a disk without running qemu-img (modules only
/// read, Docs/ARCHITECTURE.md): the qcow2 header's fields, a raw file's size.
extension ImageFormat {
    /// The size the guest sees, in bytes: a qcow2's header field, a raw
    /// regular file's length; nil for other formats or an unreadable file.
    public static func virtualSize(_ path: String) -> Int? {
        guard let probe = ImageProbe(path) else { return nil }
        switch probe.kind.format {
        case "qcow2":
            guard probe.head.count >= 32 else { return nil }
            return Int(exactly: probe.field(24, 8))
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
        probing(path) { fd, probe in
            guard case .qcow2 = probe.kind, probe.head.count >= 20 else { return nil }
            let offset = probe.field(8, 8), length = probe.field(16, 4)
            guard offset > 0, length > 0, length <= 1023, offset < 1 << 20 else { return nil }
            guard let name = bytes(fd, probe, from: Int(offset), count: Int(length)), name.count == Int(length) else { return nil }
            let raw = String(decoding: name, as: UTF8.self)
            return raw.hasPrefix("/") ? raw : path.deletingLastPathComponent.appendingPathComponent(raw)
        }
    }

    /// The external data file a qcow2 names (its `DATA` header extension,
    /// vm.settings(5) HOST PATHS), absolute as QEMU takes it: a relative name
    /// from the image's directory; nil for none. Only a regular file is
    /// opened (a FIFO would block), and no more than the header's first
    /// cluster, at most 64 KiB, is read.
    public static func qcow2DataFile(_ path: String) -> String? {
        guard FileSystem.isRegularFile(path) else { return nil }
        return probing(path) { fd, probe in
            guard case .qcow2(let version) = probe.kind, probe.head.count >= 104 else { return nil }
            // The incompatible feature bit 2 says the data lives elsewhere (qcow2 v3 only).
            guard version >= 3, probe.field(72, 8) & 4 != 0 else { return nil }
            let clusterBits = probe.field(20, 4), headerLength = probe.field(100, 4)
            guard (9...21).contains(clusterBits), headerLength >= 104 else { return nil }
            let limit = min(1 << Int(clusterBits), 64 << 10)
            guard let area = bytes(fd, probe, from: 0, count: limit) else { return nil }
            var offset = Int((headerLength + 7) / 8 * 8)
            while offset + 8 <= area.count {
                let type = ImageProbe.bigEndian(area[offset..<offset + 4]), length = Int(ImageProbe.bigEndian(area[offset + 4..<offset + 8]))
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
    }

    /// The files a VMDK text descriptor names: its extents and the parent of
    /// a delta disk (`parentFileNameHint`), absolute (a relative name from the
    /// descriptor's directory, as QEMU takes it), read as an import reads
    /// them (`ImportedImage`). Only a regular file is read, at most 64 KiB; a
    /// binary (KDMV) VMDK holds its data itself.
    public static func vmdkDescriptorFiles(_ path: String) -> [String] {
        guard FileSystem.isRegularFile(path) else { return [] }
        let text = probing(path) { fd, probe -> [UInt8]? in
            guard probe.kind == .vmdk(descriptor: true), let head = bytes(fd, probe, from: 0, count: 64 << 10) else { return nil }
            return Array(head)
        }
        guard let text else { return [] }
        return ImportedImage.Walk.descriptorReferences(text).map(\.name).filter { !$0.isEmpty }.map { name in
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

    /// `path` opened once and probed: what `body` reads comes from the same file.
    private static func probing<T>(_ path: String, _ body: (Int32, ImageProbe) -> T?) -> T? {
        guard let fd = try? FileSystem.openForReading(path) else { return nil }
        defer { close(fd) }
        guard let probe = ImageProbe(fd: fd) else { return nil }
        return body(fd, probe)
    }

    /// Up to `count` bytes from `offset`: from the probe's head when it holds
    /// them (or the file ends within it), else read.
    private static func bytes(_ fd: Int32, _ probe: ImageProbe, from offset: Int, count: Int) -> ArraySlice<UInt8>? {
        let head = probe.head
        if offset + count <= head.count || probe.reachedEnd {
            return head[min(offset, head.count)..<min(offset + count, head.count)]
        }
        return FileSystem.readBytes(fd, at: offset, count: count).map { $0[...] }
    }
}
