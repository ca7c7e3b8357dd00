#if canImport(Glibc)
import Glibc
#endif

extension ImageProbe {
    /// One line describing a file (what `file -b` says about the kinds of
    /// image vmtools meets), from its probe, without running anything.
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
        guard let probe = ImageProbe(fd: fd), !probe.head.isEmpty else { return "empty" }
        return probe.description(fd: fd)
    }

    /// The line for this probe; `fd` reads a qcow2's backing file name.
    func description(fd: Int32) -> String {
        func text(_ off: Int, _ len: Int) -> String {
            guard off + len <= head.count else { return "" }
            return String(decoding: head[off..<off + len], as: UTF8.self)
        }
        switch kind {
        case .qcow, .qcow2:
            let version = field(4, 4)
            var s = "QEMU QCOW\(version >= 2 ? "2" : "") Image (v\(version)), \(field(24, 8)) bytes"
            // Int(exactly:): an offset past Int.max (a hostile header) is not a backing file, not a trap.
            let backingOffset = Int(exactly: field(8, 8)) ?? 0, backingSize = Int(field(16, 4))
            if backingOffset > 0, backingSize > 0, backingSize < 4096 {
                if let name = FileSystem.readBytes(fd, at: backingOffset, count: backingSize), name.count == backingSize {
                    s += ", has backing file (path \(String(decoding: name, as: UTF8.self)))"
                }
            }
            return s
        case .iso:
            let label = text(0x8028, 32).trimmingTrailingWhitespace()
            var s = "ISO 9660 CD-ROM filesystem data '\(label)'"
            if field(510, 2) == 0x55AA { s += " (DOS/MBR boot sector)" }
            return s
        case .vmdk(descriptor: false): return "VMware4 disk image"
        case .vhdx: return "Microsoft Disk Image eXtended (VHDX)"
        case .vpc: return "Microsoft Disk Image (VHD)"
        case .vdi: return "VirtualBox Disk Image (VDI)"
        case .tar: return "POSIX tar archive"
        case .vmdk(descriptor: true), .raw:
            return field(510, 2) == 0x55AA ? "DOS/MBR boot sector" : "data"
        }
    }
}
