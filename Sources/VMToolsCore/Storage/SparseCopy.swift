#if canImport(Glibc)
import Glibc
#endif
import CSystem

/// Copies disk images the fast way and keeps them sparse: a reflink
/// (`FICLONE`, instant on btrfs/XFS) when the filesystem can, otherwise
/// `copy_file_range` over the data extents only (`SEEK_DATA`/`SEEK_HOLE`),
/// so holes stay holes; plain read/write when even that is refused. The
/// copy is synced before it returns, and checks for Ctrl-C between chunks.
public enum SparseCopy {
    public enum Method: String, Sendable { case reflink, copyFileRange = "copy_file_range", readWrite = "read/write" }

    static let chunk: Int64 = 64 << 20

    /// Copies `source` to `dest`, which must not exist. `progress` gets
    /// (bytes done, bytes of data in all) as the copy goes.
    @discardableResult
    public static func copy(_ source: String, to dest: String, progress: ((Int64, Int64) -> Void)? = nil) throws -> Method {
        let input = try FileSystem.openForReading(source)
        defer { close(input) }
        var st = stat()
        fstat(input, &st)
        let output = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 0o666)
        guard output >= 0 else { throw VMToolsError(.failure, dest, "cannot create: \(FileSystem.errnoMessage())") }
        defer { close(output) }
        let size = Int64(st.st_size)
        func fail(_ what: String) -> VMToolsError { VMToolsError(.failure, dest, "\(what): \(FileSystem.errnoMessage())") }

        var method = Method.reflink
        if csystem_ficlone(output, input) != 0 {
            method = .copyFileRange
            let extents = dataExtents(input, size: size)
            let total = extents.reduce(0) { $0 + $1.1 - $1.0 }
            var done: Int64 = 0
            for (start, end) in extents {
                var offset = start
                while offset < end {
                    try Interrupt.check()
                    let length = Int(min(chunk, end - offset))
                    var n = -1
                    if method == .copyFileRange {
                        var inOff = offset, outOff = offset
                        n = csystem_copy_file_range(input, &inOff, output, &outOff, length)
                        if n < 0 && [EXDEV, ENOSYS, EINVAL, EOPNOTSUPP].contains(errno) { method = .readWrite }
                        else if n < 0 && errno != EINTR { throw fail("cannot copy") }
                    }
                    if method == .readWrite { n = try copyByHand(input, output, offset: offset, length: length, source: source, dest: dest) }
                    if n == 0 { break }  // the source shrank under us
                    if n > 0 {
                        // Start writing back what is copied so far: the final
                        // fsync then has little left to wait for.
                        _ = csystem_start_writeback(output, offset, Int64(n))
                        offset += Int64(n)
                        done += Int64(n)
                        progress?(done, total)
                    }
                }
            }
            guard ftruncate(output, off_t(size)) == 0 else { throw fail("cannot set the size") }
        }
        guard fsync(output) == 0 else { throw fail("cannot sync") }
        return method
    }

    /// (start, end) of every data region; the whole file when the
    /// filesystem cannot tell holes apart.
    static func dataExtents(_ fd: Int32, size: Int64) -> [(Int64, Int64)] {
        var out: [(Int64, Int64)] = []
        var offset: Int64 = 0
        while offset < size {
            let data = Int64(csystem_seek_data(fd, offset))
            if data < 0 { return errno == ENXIO ? out : [(Int64(0), size)] }
            let hole = Int64(csystem_seek_hole(fd, data))
            if hole < 0 { return [(Int64(0), size)] }
            out.append((data, min(hole, size)))
            offset = hole
        }
        return out
    }

    private static func copyByHand(_ input: Int32, _ output: Int32, offset: Int64, length: Int, source: String, dest: String) throws -> Int {
        var buffer = [UInt8](repeating: 0, count: min(length, 1 << 20))
        let n = buffer.withUnsafeMutableBytes { pread(input, $0.baseAddress, $0.count, off_t(offset)) }
        guard n > 0 else {
            if n < 0 { throw VMToolsError(.failure, source, "cannot read: \(FileSystem.errnoMessage())") }
            return 0
        }
        // Zero blocks become holes, as cp --sparse=always makes them.
        if buffer[0..<n].allSatisfy({ $0 == 0 }) { return n }
        var written = 0
        while written < n {
            let w = buffer.withUnsafeBytes { pwrite(output, $0.baseAddress! + written, n - written, off_t(offset) + off_t(written)) }
            guard w > 0 else { throw VMToolsError(.failure, dest, "cannot write: \(FileSystem.errnoMessage())") }
            written += w
        }
        return n
    }
}

/// A one-line progress bar on a terminal, for long copies.
public final class ProgressBar {
    let console: Console
    let label: String
    var last = 0.0

    public init?(console: Console, label: String) {
        guard console.verbosity >= 2, console.err.isTerminal else { return nil }
        self.console = console
        self.label = label.escapingControlCharacters
    }

    public func update(_ done: Int64, _ total: Int64) {
        let now = SystemClock.now()
        guard now - last >= 0.2 || done == total else { return }
        last = now
        let fraction = total > 0 ? Double(done) / Double(total) : 1
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        console.err.write("\r\(label) [\(bar)] \(Int(fraction * 100))% \(Formatting.size(kilobytes: Int(done / 1024)))")
        if done == total { console.err.write("\n") }
        console.err.flush()
    }
}
