#if canImport(Glibc)
import Glibc
#endif

/// Which firmware can boot an image, from its first sectors (vmcreate(1),
/// autodetect): what `vmcreate` needs to pick `vm_firmware`, without
/// running anything (a qcow2 is read through its L1 and L2 tables).
public enum BootFirmware: Equatable, Sendable {
    /// Nothing to boot, or a format not read here.
    case none
    /// BIOS boot code (an MBR boot loader, a GPT BIOS boot partition, an
    /// El Torito BIOS entry); such an image may boot by UEFI too.
    case bios
    /// An EFI system partition (or El Torito EFI entry) and no BIOS boot code.
    case uefiOnly

    public static func of(_ path: String) -> BootFirmware {
        guard FileSystem.isRegularFile(path), let head = guestBytes(path, count: 24576) else { return .none }
        if ImageProbe(path)?.kind == .iso { return ofISO(path, head: head) }
        return ofDisk(head)
    }

    // GPT partition type GUIDs, as stored (the first three fields little-endian).
    static let espType: [UInt8] = [0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B]
    static let biosBootType: [UInt8] = Array("Hah!IdontNeedEFI".utf8)  // 21686148-6449-6E6F-744E-656564454649

    /// An MBR (type 0xEF) or GPT (512- or 4096-byte sectors) disk.
    static func ofDisk(_ b: [UInt8]) -> BootFirmware {
        guard b.count >= 512, b[510] == 0x55, b[511] == 0xAA else { return .none }
        if b[0..<440].contains(where: { $0 != 0 }) { return .bios }
        var esp = (0..<4).contains { b[446 + 16 * $0 + 4] == 0xEF }
        for sector in [512, 4096] where b.count >= sector + 92 && b[sector..<sector + 8].elementsEqual("EFI PART".utf8) {
            // The image may come from elsewhere: a table LBA past what was read is not multiplied (it could overflow).
            let lba = le(b, sector + 72, 8), count = le(b, sector + 80, 4), size = le(b, sector + 84, 4)
            guard size >= 128, lba > 0, lba <= b.count / sector else { break }
            let start = lba * sector
            for k in 0..<min(count, 256) {
                let off = start + k * size
                guard off + 16 <= b.count else { break }
                let type = Array(b[off..<off + 16])
                if type == biosBootType { return .bios }
                if type == espType { esp = true }
            }
            break
        }
        return esp ? .uefiOnly : .none
    }

    /// A CD boots through El Torito, whatever its hybrid MBR says: which
    /// platforms the boot catalog has entries for.
    static func ofISO(_ path: String, head: [UInt8]) -> BootFirmware {
        guard let record = guestBytes(path, count: 2048, at: 17 * 2048), record[0] == 0, record[1..<6].elementsEqual("CD001".utf8),
              record[7..<30].elementsEqual("EL TORITO SPECIFICATION".utf8),
              let catalog = guestBytes(path, count: 2048, at: le(record, 0x47, 4) * 2048), catalog[0] == 1 else {
            return ofDisk(head) == .uefiOnly ? .uefiOnly : .none
        }
        var platforms: Set<UInt8> = []
        if catalog[32] == 0x88 { platforms.insert(catalog[1]) }
        var platform = catalog[1]
        for off in stride(from: 64, to: 2048, by: 32) {
            switch catalog[off] {
            case 0x90, 0x91: platform = catalog[off + 1]
            case 0x88: platforms.insert(platform)
            case 0x00, 0x44: continue
            default: break
            }
            if ![0x90, 0x91, 0x88, 0x00, 0x44].contains(catalog[off]) { break }
        }
        if platforms.contains(0) { return .bios }
        return platforms.contains(0xEF) ? .uefiOnly : .none
    }

    static func le(_ b: [UInt8], _ off: Int, _ len: Int) -> Int {
        Int(truncatingIfNeeded: b[off..<off + len].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
    }

    /// `count` bytes from offset `at` of what the guest sees: a raw file
    /// as is, a qcow2 through its tables (and backing file); nil for other
    /// formats, encrypted or compressed clusters, or a file too short.
    static func guestBytes(_ path: String, count: Int, at offset: Int = 0, depth: Int = 0) -> [UInt8]? {
        guard depth < 8, let format = ImageProbe(path)?.kind.format else { return nil }
        guard let fd = try? FileSystem.openForReading(path) else { return nil }
        defer { close(fd) }
        func read(_ n: Int, _ at: Int) -> [UInt8]? {
            FileSystem.readBytes(fd, at: at, count: n).flatMap { $0.count == n ? $0 : nil }
        }
        func be(_ b: [UInt8], _ off: Int, _ len: Int) -> UInt64 { b[off..<off + len].reduce(0) { $0 << 8 | UInt64($1) } }
        switch format {
        case "raw":
            return read(count, offset)
        case "qcow2":
            guard let h = read(104, 0) else { return nil }
            let version = be(h, 4, 4), clusterBits = be(h, 20, 4)
            guard (9...21).contains(clusterBits), be(h, 32, 4) == 0 else { return nil }
            // External data files and extended L2 entries are not read here.
            if version >= 3, be(h, 72, 8) & (1 << 2 | 1 << 4) != 0 { return nil }
            let clusterSize = 1 << Int(clusterBits), l2Entries = clusterSize / 8
            // Offsets past 2^56 are no qcow2's (and Int(_:) traps past 2^63).
            guard be(h, 40, 8) < 1 << 56 else { return nil }
            let l1Size = Int(be(h, 36, 4)), l1Offset = Int(be(h, 40, 8))
            let mask: UInt64 = 0x00FF_FFFF_FFFF_FE00
            let backing = ImageFormat.qcow2Backing(path)
            var out: [UInt8] = []
            var pos = offset
            while out.count < count {
                let inCluster = pos % clusterSize, n = min(clusterSize - inCluster, count - out.count)
                let l1Index = pos / clusterSize / l2Entries, l2Index = pos / clusterSize % l2Entries
                var data: [UInt8]? = nil
                var zero = false
                if l1Index < l1Size, let l1 = read(8, l1Offset + 8 * l1Index), be(l1, 0, 8) & mask != 0,
                   let l2 = read(8, Int(be(l1, 0, 8) & mask) + 8 * l2Index) {
                    let entry = be(l2, 0, 8)
                    if entry & (1 << 62) != 0 { return nil }
                    if version >= 3 && entry & 1 != 0 { zero = true }
                    else if entry & mask != 0 { data = read(n, Int(entry & mask) + inCluster) }
                }
                if data == nil && !zero, let backing {
                    data = guestBytes(backing, count: n, at: pos, depth: depth + 1)
                }
                out += data ?? [UInt8](repeating: 0, count: n)
                pos += n
            }
            return out
        default:
            return nil
        }
    }
}
