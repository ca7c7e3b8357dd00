import CSystem

#if canImport(Glibc)
import Glibc
#endif

/// `openssl dgst -r` or `sha256sum`/`sha512sum` reading a pipe we write
/// the download into; both print `HEX ` first.
package final class HashChild {
    private var input: Int32
    private var output: Int32
    private var pid: pid_t
    let path: String

    init(path: String, arguments: [String]) throws {
        self.path = path
        var inPipe: [Int32] = [-1, -1], outPipe: [Int32] = [-1, -1]
        guard csystem_pipe2_cloexec(&inPipe) == 0 else { throw VMToolsError(.failure, path, "cannot create a pipe: \(FileSystem.errnoMessage())") }
        guard csystem_pipe2_cloexec(&outPipe) == 0 else {
            close(inPipe[0]); close(inPipe[1])
            throw VMToolsError(.failure, path, "cannot create a pipe: \(FileSystem.errnoMessage())")
        }
        _ = fcntl(inPipe[1], 1031 /* F_SETPIPE_SZ */, Int32(1 << 20))
        do {
            pid = try Subprocess(path, arguments, environment: ["LC_ALL": "C"]).spawnTool(stdin: inPipe[0], stdout: outPipe[1], stderr: -1)
        } catch {
            [inPipe[0], inPipe[1], outPipe[0], outPipe[1]].forEach { close($0) }
            throw error
        }
        close(inPipe[0])
        close(outPipe[1])
        input = inPipe[1]
        output = outPipe[0]
    }

    /// The hashing child: `openssl dgst` where installed (it uses the CPU's
    /// SHA instructions: measured here 6x coreutils' sha256sum, 1.3x its
    /// sha512sum), else coreutils, which every Debian system has.
    static func start(_ algorithm: ImageDigest.Algorithm, environment: [String: String]) throws -> HashChild {
        let path = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        if let openssl = Subprocess.which("openssl", path: path) {
            return try HashChild(path: openssl, arguments: ["dgst", "-\(algorithm.rawValue)", "-r"])
        }
        let tool = "\(algorithm.rawValue)sum"
        guard let sum = Subprocess.which(tool, path: path) else {
            throw VMToolsError(.failure, tool, "not found in PATH; install Debian's coreutils (or openssl)")
        }
        return try HashChild(path: sum, arguments: [])
    }

    /// The digest of a whole file, by the same child a download feeds
    /// (`vmimage -c`): streamed through the pipe, one pass.
    package static func digest(ofFile file: String, _ algorithm: ImageDigest.Algorithm, environment: [String: String]) throws -> ImageDigest {
        let fd = try FileSystem.openForReading(file)
        defer { close(fd) }
        let child = try start(algorithm, environment: environment)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        do {
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n < 0 { throw VMToolsError(.failure, file, "cannot read: \(FileSystem.errnoMessage())") }
                if n == 0 { break }
                try buffer.withUnsafeBytes { try child.feed(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            }
        } catch {
            child.abandon()
            throw error
        }
        let hex = try child.finish()
        guard ImageDigest.isHex(hex, length: algorithm.hexLength) else { throw VMToolsError(.failure, child.path, "printed no \(algorithm.rawValue) digest") }
        return ImageDigest(algorithm, hex: hex)
    }

    func feed(_ data: UnsafeRawBufferPointer) throws {
        do {
            try FileSystem.writeAll(input, data, path: path)
        } catch {
            throw VMToolsError(.failure, path, "stopped reading the download: \(FileSystem.errnoMessage())")
        }
    }

    func feed(_ data: [UInt8]) throws { try data.withUnsafeBytes { try feed($0) } }

    /// The hex digest, once all was fed.
    func finish() throws -> String {
        close(input)
        input = -1
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 512)
        while out.count < 4096 {
            let n = chunk.withUnsafeMutableBytes { read(output, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        close(output)
        output = -1
        let status = Subprocess.wait(pid)
        pid = 0
        guard status == 0 else { throw VMToolsError(.failure, path, "failed with status \(status)") }
        return String(decoding: out.prefix { $0 != 0x20 && $0 != 0x0a }, as: UTF8.self)
    }

    /// Ends the child when the pull failed before `finish`.
    func abandon() {
        if input >= 0 { close(input); input = -1 }
        if output >= 0 { close(output); output = -1 }
        if pid > 0 { kill(pid, SIGKILL); _ = Subprocess.wait(pid); pid = 0 }
    }
}
