#if canImport(Glibc)
import Glibc
#endif

/// Writes a ustar archive member by member, in the order given: an OVA's
/// descriptor must come first (DMTF DSP0243 5.3). Owner root, mode 0644 and
/// the given time make two exports of the same VM the same bytes.
package struct TarWriter {
    let fd: Int32
    let path: String
    let mtime: Int

    /// `fd` is open for writing; `path` names it in errors.
    package init(fd: Int32, path: String, mtime: Int = 0) {
        self.fd = fd
        self.path = path
        self.mtime = mtime
    }

    package func add(name: String, bytes: [UInt8]) throws {
        try write(header(name: name, size: bytes.count))
        try write(bytes)
        try pad(bytes.count)
    }

    /// Copies the file at `source` in as `name`.
    package func add(name: String, file source: String) throws {
        let input = try FileSystem.openForReading(source)
        defer { close(input) }
        var st = stat()
        guard fstat(input, &st) == 0 else { throw VMToolsError(.failure, source, "cannot read: \(FileSystem.errnoMessage())") }
        let size = Int(st.st_size)
        try write(header(name: name, size: size))
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var copied = 0
        while copied < size {
            let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw VMToolsError(.failure, source, "cannot read: \(n == 0 ? "the file shrank" : FileSystem.errnoMessage())") }
            let chunk = min(n, size - copied)
            try write(Array(buffer[0..<chunk]))
            copied += chunk
        }
        try pad(size)
    }

    /// The two zero blocks that end an archive.
    package func finish() throws { try write([UInt8](repeating: 0, count: 1024)) }

    func pad(_ size: Int) throws {
        let rest = (512 - size % 512) % 512
        if rest > 0 { try write([UInt8](repeating: 0, count: rest)) }
    }

    func header(name: String, size: Int) throws -> [UInt8] {
        let nameBytes = Array(name.utf8)
        guard !nameBytes.isEmpty, nameBytes.count <= 100 else { throw VMToolsError(.failure, path, "member name too long for tar: \(name)") }
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ offset: Int, _ bytes: [UInt8]) { for (i, b) in bytes.enumerated() { h[offset + i] = b } }
        func octal(_ value: Int, width: Int) -> [UInt8] {
            let digits = String(value, radix: 8)
            return Array((String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits).utf8) + [0]
        }
        put(0, nameBytes)
        put(100, octal(0o644, width: 8))
        put(108, octal(0, width: 8))
        put(116, octal(0, width: 8))
        put(124, octal(size, width: 12))
        put(136, octal(mtime, width: 12))
        put(148, Array("        ".utf8))
        h[156] = UInt8(ascii: "0")
        put(257, Array("ustar".utf8) + [0])
        put(263, Array("00".utf8))
        put(265, Array("root".utf8))
        put(297, Array("root".utf8))
        let sum = h.reduce(0) { $0 + Int($1) }
        put(148, Array((String(repeating: "0", count: 6 - String(sum, radix: 8).count) + String(sum, radix: 8)).utf8) + [0, 0x20])
        return h
    }

    func write(_ bytes: [UInt8]) throws {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw VMToolsError(.failure, path, "cannot write: \(FileSystem.errnoMessage())") }
            done += n
        }
    }
}
