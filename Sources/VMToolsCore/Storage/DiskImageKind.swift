#if canImport(Glibc)
import Glibc
#endif

/// One line describing a file, from its first bytes (what `file -b` says
/// about the kinds of image vmtools meets), without running anything.
public enum DiskImageKind {
    public static func describe(_ path: String) -> String {
        var st = stat()
        guard stat(path, &st) == 0 else { return "missing (no such file)" }
        switch st.st_mode & S_IFMT {
        case S_IFDIR: return "directory (shared as a generated ISO or a FAT disk)"
        case S_IFBLK: return "block special (a device)"
        case S_IFCHR: return "character special"
        case S_IFREG: break
        default: return "special file"
        }
        let fd: Int32
        do { fd = try FileSystem.openForReading(path) } catch let e as VMToolsError { return "unreadable (\(e.message))" } catch { return "unreadable" }
        defer { close(fd) }
        var head = [UInt8](repeating: 0, count: 0x8800)
        let n = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return "empty" }
        let b = Array(head[0..<n])
        func be(_ off: Int, _ len: Int) -> UInt64 {
            guard off + len <= b.count else { return 0 }
            return b[off..<off + len].reduce(0) { $0 << 8 | UInt64($1) }
        }
        func text(_ off: Int, _ len: Int) -> String {
            guard off + len <= b.count else { return "" }
            return String(decoding: b[off..<off + len], as: UTF8.self)
        }
        if Array(b.prefix(4)) == [0x51, 0x46, 0x49, 0xFB] {
            let version = be(4, 4)
            var s = "QEMU QCOW\(version >= 2 ? "2" : "") Image (v\(version)), \(be(24, 8)) bytes"
            // Int(exactly:): an offset past Int.max (a hostile header) is not a backing file, not a trap.
            let backingOffset = Int(exactly: be(8, 8)) ?? 0, backingSize = Int(be(16, 4))
            if backingOffset > 0, backingSize > 0, backingSize < 4096 {
                var name = [UInt8](repeating: 0, count: backingSize)
                if name.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, backingSize, off_t(backingOffset)) }) == backingSize {
                    s += ", has backing file (path \(String(decoding: name, as: UTF8.self)))"
                }
            }
            return s
        }
        if text(0x8001, 5) == "CD001" {
            let label = text(0x8028, 32).trimmingTrailingWhitespace()
            var s = "ISO 9660 CD-ROM filesystem data '\(label)'"
            if be(510, 2) == 0x55AA { s += " (DOS/MBR boot sector)" }
            return s
        }
        if text(0, 4) == "KDMV" { return "VMware4 disk image" }
        if text(0, 8) == "vhdxfile" { return "Microsoft Disk Image eXtended (VHDX)" }
        if text(0, 8) == "conectix" || (st.st_size >= 512 && trailerIsVHD(fd, size: st.st_size)) {
            return "Microsoft Disk Image (VHD)"
        }
        if b.count >= 0x44, Array(b[0x40..<0x44]) == [0x7F, 0x10, 0xDA, 0xBE] {
            return "VirtualBox Disk Image (VDI)"
        }
        if text(257, 5) == "ustar" { return "POSIX tar archive" }
        if be(510, 2) == 0x55AA { return "DOS/MBR boot sector" }
        return "data"
    }

    /// An ISO 9660 image or a CD in a drive: the `CD001` signature at 0x8001.
    public static func isISO(_ path: String) -> Bool {
        guard let fd = try? FileSystem.openForReading(path) else { return false }
        defer { close(fd) }
        var sig = [UInt8](repeating: 0, count: 5)
        return sig.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, 5, 0x8001) }) == 5 && sig == Array("CD001".utf8)
    }

    private static func trailerIsVHD(_ fd: Int32, size: off_t) -> Bool {
        var tail = [UInt8](repeating: 0, count: 8)
        let n = tail.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 8, size - 512) }
        return n == 8 && String(decoding: tail, as: UTF8.self) == "conectix"
    }
}
