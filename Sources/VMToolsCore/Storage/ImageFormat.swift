#if canImport(Glibc)
import Glibc
#endif

/// Image formats by their first bytes, as QEMU names them: fast, no
/// subprocess, and explicit formats keep QEMU from probing (and warning).
public enum ImageFormat {
    public static func detect(_ path: String) -> String? {
        guard let fd = try? FileSystem.openForReading(path) else { return nil }
        defer { close(fd) }
        return detect(fd: fd)
    }

    /// The same, from an open file (an import checks the file it opened).
    package static func detect(fd: Int32) -> String? {
        var head = [UInt8](repeating: 0, count: 512)
        let n = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n >= 0 else { return nil }
        let b = Array(head[0..<n])
        func starts(_ s: String) -> Bool { b.starts(with: Array(s.utf8)) }
        if b.starts(with: [0x51, 0x46, 0x49, 0xFB]) { return b.count >= 8 && b[7] == 1 && b[4...6].allSatisfy({ $0 == 0 }) ? "qcow" : "qcow2" }
        if starts("KDMV") || starts("# Disk DescriptorFile") { return "vmdk" }
        if starts("vhdxfile") { return "vhdx" }
        if starts("conectix") { return "vpc" }
        if b.count >= 0x44, Array(b[0x40..<0x44]) == [0x7F, 0x10, 0xDA, 0xBE] { return "vdi" }
        var st = stat()
        if fstat(fd, &st) == 0, st.st_size >= 512 {
            var tail = [UInt8](repeating: 0, count: 8)
            if tail.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, 8, st.st_size - 512) }) == 8, tail == Array("conectix".utf8) {
                return "vpc"
            }
        }
        return "raw"
    }

    /// The qcow2 version (2 or 3) of a qcow2 file.
    public static func qcow2Version(_ path: String) -> Int? {
        guard let fd = try? FileSystem.openForReading(path) else { return nil }
        defer { close(fd) }
        var head = [UInt8](repeating: 0, count: 8)
        guard head.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, 8, 0) }) == 8 else { return nil }
        return Int(head[4..<8].reduce(0) { $0 << 8 | UInt32($1) })
    }
}
