import CSystem

#if canImport(Glibc)
import Glibc
#endif

/// The network side of a pull (vmimage(1), DOWNLOADS; Docs/ARCHITECTURE.md,
/// "Images"). Downloads go through Debian's `curl` rather than Foundation's
/// networking: linking FoundationNetworking would load libcurl and its TLS
/// stack into every command's start-up, while a child `curl` costs nothing
/// until an image is pulled, and brings proxies from the environment,
/// resuming and certificate checks as users know them. The image is hashed
/// while it downloads by a child (`openssl dgst`, else coreutils'
/// `sha256sum`/`sha512sum`) fed from the same bytes we write: C, on another
/// core, several times faster than our pure-Swift SHA-256 (Benchmarks/README.md,
/// pull), and verifying costs no second pass.
extension ImagePuller {
    /// curl's options for every download: only http(s), redirects bounded
    /// (and an https download is never redirected to plain http), errors as
    /// failures, certificates always checked (no `-k`; `-q` first so no
    /// ~/.curlrc can add it), a stalled transfer given up after two minutes.
    func curlArguments(_ url: String) -> [String] {
        let https = url.lowercased().hasPrefix("https://")
        return ["-q", "--fail", "--silent", "--show-error", "--location", "--max-redirs", "10",
                "--proto", "=http,https", "--proto-redir", https ? "=https" : "=http,https",
                "--connect-timeout", "30", "--speed-limit", "1", "--speed-time", "120"]
    }

    func tool(_ name: String, package: String) throws -> String {
        if let path = Subprocess.which(name, path: environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin") { return path }
        throw VMToolsError(.failure, name, "not found: install the Debian package \(package)")
    }

    /// One line from curl's failure: the HTTP status, the redirect loop,
    /// where a transfer stopped.
    func downloadError(_ entry: ImageEntry, _ url: String, status: Int32, stderr: String, kept: UInt64? = nil) -> VMToolsError {
        var why = stderr.split(separator: "\n").last(where: { $0.hasPrefix("curl:") }).map { line -> String in
            var l = line.dropFirst(5).drop { $0 == " " }
            if l.hasPrefix("("), let close = l.firstIndex(of: ")") { l = l[l.index(after: close)...].drop { $0 == " " } }
            return String(l)
        } ?? "curl failed with status \(status)"
        // Lower case like our own messages, but not an acronym ("SSL …").
        if let a = why.first, a.isUppercase, why.dropFirst().first?.isLowercase == true { why = a.lowercased() + why.dropFirst() }
        switch status {
        case 47: why = "too many redirects (a redirect loop?): \(why)"
        case 127: why = "curl could not run (install the Debian package curl)"
        default: break
        }
        if let kept, kept > 0 {
            why += "; the \(kept) bytes downloaded are kept and the next pull resumes"
        }
        return VMToolsError(.failure, entry.name, "cannot download \(url): \(why)")
    }

    /// Downloads `url` under the download lock of its digest (or of the URL
    /// when nothing verifies it), resuming a partial download, and stores it.
    func download(_ entry: ImageEntry, url: String, expected: ImageDigest?) throws -> ImageCache.Image {
        try cache.prepare()
        let key = expected.map(ImageCache.stem) ?? "url-" + String(Self.sha256(url).prefix(32))
        let lock = try cache.lockDownload(key) {
            console.progress("\(entry.name): waiting for another command downloading \(url)")
        }
        defer { lock.release() }
        // The command we waited for may have stored it meanwhile.
        if let expected, let cached = cache.image(expected) { return cached }
        let partial = cache.partialDirectory.appendingPathComponent(key)
        let algorithm = expected?.algorithm ?? .sha256
        var result = try transfer(entry, url: url, partial: partial, algorithm: algorithm, resume: true)
        let resumedNothing = result.offset > 0 && result.size == result.offset && result.curl == 22
        if result.curl == 33 || result.curl == 36 || (resumedNothing && result.digest != expected) {
            // The server cannot resume (no ranges), or refuses the range of
            // a partial file that is not a prefix of what it serves (416):
            // start again from the first byte.
            result = try transfer(entry, url: url, partial: partial, algorithm: algorithm, resume: false)
        }
        if result.curl != 0 && !(expected != nil && result.digest == expected) {
            if result.size == 0 { try? FileSystem.removeFile(partial) }
            throw downloadError(entry, url, status: result.curl, stderr: result.stderr, kept: result.size)
        }
        if let expected, result.digest != expected {
            try? FileSystem.removeFile(partial)
            let source = entry.digests[architecture] != nil ? "the pinned image_digest_\(architecture)" : "the checksum file \(entry.checksums[architecture].map(mirror.rewrite) ?? "")"
            throw VMToolsError(.failure, entry.name, "\(url): the download's digest is \(result.digest), expected \(expected) from \(source); the download was removed")
        }
        let image = try cache.store(partial: partial, digest: result.digest, fileExtension: ImageCache.fileExtension(of: url),
                                    entry: entry.name, url: url, date: Int(time(nil)), size: result.size)
        console.info("\(entry.name): pulled \(result.digest.algorithm.rawValue):\(result.digest.hex.prefix(16))… (\(Formatting.bytes(result.size))) from \(url)")
        return image
    }

    struct Transfer {
        var curl: Int32
        var stderr: String
        var digest: ImageDigest
        /// Bytes in the partial file at the end.
        var size: UInt64
        /// Bytes it held at the start (resumed from).
        var offset: UInt64
    }

    /// One curl run appending to `partial`: its bytes go to the file and to
    /// the hashing child, which first reads what the partial file held.
    func transfer(_ entry: ImageEntry, url: String, partial: String, algorithm: ImageDigest.Algorithm, resume: Bool) throws -> Transfer {
        let curl = try tool("curl", package: "curl")
        let hasher = try HashChild.start(algorithm, environment: environment)
        defer { hasher.abandon() }
        let fd = open(partial, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let e = errno
            if e == ELOOP { throw FileSystem.plantedLink(partial) }
            throw VMToolsError(.failure, partial, "cannot create: \(FileSystem.errnoMessage(e))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw VMToolsError(.failure, partial, "refusing to write into it: not a regular file")
        }
        fchmod(fd, 0o600)
        if !resume { ftruncate(fd, 0) }
        let offset = resume ? UInt64(st.st_size) : 0

        // SIGPIPE is held on this thread while we write to the children: a
        // hasher that died must end the pull with an error, not the process.
        var pipeSet = sigset_t(), oldMask = sigset_t()
        sigemptyset(&pipeSet)
        sigaddset(&pipeSet, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &pipeSet, &oldMask)
        defer {
            var zero = timespec()
            while sigtimedwait(&pipeSet, nil, &zero) == SIGPIPE {}
            pthread_sigmask(SIG_SETMASK, &oldMask, nil)
        }

        var done = UInt64(0)
        while done < offset {
            guard let chunk = FileSystem.readBytes(fd, at: Int(done), count: Int(min(UInt64(1 << 20), offset - done))), !chunk.isEmpty else {
                throw VMToolsError(.failure, partial, "cannot read: \(FileSystem.errnoMessage())")
            }
            try hasher.feed(chunk)
            done += UInt64(chunk.count)
        }
        lseek(fd, off_t(offset), SEEK_SET)

        let headers = partial + ".headers"
        unlink(headers)
        defer { unlink(headers) }
        var args = curlArguments(url) + ["--dump-header", headers]
        if offset > 0 { args += ["--continue-at", String(offset)] }
        args += ["--", url]
        var outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
        guard csystem_pipe2_cloexec(&outPipe) == 0 else { throw VMToolsError(.failure, curl, "cannot create a pipe: \(FileSystem.errnoMessage())") }
        guard csystem_pipe2_cloexec(&errPipe) == 0 else {
            close(outPipe[0]); close(outPipe[1])
            throw VMToolsError(.failure, curl, "cannot create a pipe: \(FileSystem.errnoMessage())")
        }
        _ = fcntl(outPipe[0], 1031 /* F_SETPIPE_SZ */, Int32(1 << 20))
        let pid: pid_t
        do {
            pid = try Subprocess(curl, args, environment: environment).spawnTool(stdin: -1, stdout: outPipe[1], stderr: errPipe[1])
        } catch {
            close(outPipe[0]); close(outPipe[1]); close(errPipe[0]); close(errPipe[1])
            throw error
        }
        close(outPipe[1])
        close(errPipe[1])
        var curlRunning = true
        func stopCurl() {
            if curlRunning { kill(pid, SIGTERM); _ = Subprocess.wait(pid); curlRunning = false }
        }
        defer {
            stopCurl()
            if outPipe[0] >= 0 { close(outPipe[0]) }
            if errPipe[0] >= 0 { close(errPipe[0]) }
        }

        let meter = console.err.isTerminal && console.verbosity >= 2 ? DownloadMeter(console: console, name: entry.name, headers: headers, offset: offset) : nil
        var stderr: [UInt8] = []
        var fds = [pollfd(fd: outPipe[0], events: Int16(POLLIN), revents: 0), pollfd(fd: errPipe[0], events: Int16(POLLIN), revents: 0)]
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
        defer { buffer.deallocate() }
        while fds.contains(where: { $0.fd >= 0 }) {
            if let s = Interrupt.pending() {
                stopCurl()
                throw VMToolsError(.failure, entry.name, "interrupted by signal \(s) while downloading \(url); the next pull resumes it")
            }
            if poll(&fds, nfds_t(fds.count), 250) < 0 {
                if errno == EINTR { continue }
                break
            }
            for k in fds.indices where fds[k].fd >= 0 && fds[k].revents != 0 {
                let n = read(fds[k].fd, buffer.baseAddress, k == 0 ? buffer.count : 4096)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 {
                    close(fds[k].fd)
                    if k == 0 { outPipe[0] = -1 } else { errPipe[0] = -1 }
                    fds[k].fd = -1
                    continue
                }
                if k == 1 {
                    if stderr.count < 65536 { stderr.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[0..<n])) }
                    continue
                }
                let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
                do {
                    try FileSystem.writeAll(fd, chunk, path: partial)
                } catch let e as VMToolsError {
                    // A full disk: what was written is no good to a later
                    // run, and it holds the space the user needs back.
                    stopCurl()
                    meter?.finish()
                    try? FileSystem.removeFile(partial)
                    throw VMToolsError(.failure, entry.name, "cannot download \(url): \(e.description); the partial download was removed")
                }
                try hasher.feed(chunk)
                done += UInt64(n)
                meter?.update(done)
            }
        }
        meter?.finish()
        let status = Subprocess.wait(pid)
        curlRunning = false
        let hex = try hasher.finish()
        guard ImageDigest.isHex(hex, length: algorithm.hexLength) else {
            throw VMToolsError(.failure, hasher.path, "printed no \(algorithm.rawValue) digest")
        }
        if fsync(fd) != 0 && status == 0 {
            let e = errno
            try? FileSystem.removeFile(partial)
            throw VMToolsError(.failure, entry.name, "cannot download \(url): \(partial): cannot sync: \(FileSystem.errnoMessage(e)); the partial download was removed")
        }
        return Transfer(curl: status, stderr: String(decoding: stderr, as: UTF8.self), digest: ImageDigest(algorithm, hex: hex), size: done, offset: offset)
    }

    /// `DIR/.gnupg.XXXXXX`, 0700 (mkdtemp).
    static func temporaryDirectory(in dir: String) throws -> String {
        var template = Array(dir.appendingPathComponent(".gnupg.XXXXXX").utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw VMToolsError(.failure, dir, "cannot create a temporary directory: \(FileSystem.errnoMessage())")
        }
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func sha256(_ s: String) -> String {
        var h = SHA256()
        h.update(Array(s.utf8))
        return h.finalize()
    }
}

extension Int32 {
    /// Runs `body` with this open descriptor, then closes it.
    func closingAfter<T>(_ body: (Int32) throws -> T) rethrows -> T {
        defer { close(self) }
        return try body(self)
    }
}
