import Foundation
import Testing
@testable import VMToolsCore

/// Verified downloads into the image cache (vmimage(1), DOWNLOADS), in
/// process through ImagePuller, from a test server on 127.0.0.1.
@Suite struct ImagePullTests {
    @Test(.requires("python3", "curl"))
    func testServerServesRangesAndCountsRequests() throws {
        let s = Scratch()
        let bytes = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try s.writeBytes("www/a.img", bytes)
        let server = try TestImageServer(directory: s.url("www"), state: s.url("state"), faults: .init(dropOnce: ["/a.img"]))
        defer { server.stop() }
        guard let curl = requireTool("curl") else { return }
        let first = try Subprocess(curl, ["-sS", "--fail", "-o", s.url("got"), server.url("a.img")]).run()
        #expect(first.status == 18)
        let second = try Subprocess(curl, ["-sS", "--fail", "-C", "-", "-o", s.url("got"), server.url("a.img")]).run()
        #expect(second.status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: s.url("got"))) == Data(bytes))
        #expect(server.gets("a.img").map(\.range) == [nil, "bytes=50000-"])
        #expect(server.gets("a.img").map(\.bytes) == [50000, 50000])
    }

    @Test(.requires("gpg", "gpgv", "gpgconf"))
    func testSigningKeySignsWhatGpgvAccepts() throws {
        let s = Scratch()
        let key = try TestSigningKey(directory: s.url("k1"))
        defer { key.stop() }
        let other = try TestSigningKey(directory: s.url("k2"))
        defer { other.stop() }
        let file = try s.write("SUMS", "abc  x.img\n")
        try key.detachSign(file, to: s.url("SUMS.sign"))
        try key.clearSign(file, to: s.url("SUMS.asc"))
        guard let gpgv = requireTool("gpgv") else { return }
        #expect(try Subprocess(gpgv, ["--keyring", key.keyring, s.url("SUMS.sign"), file]).run().status == 0)
        #expect(try Subprocess(gpgv, ["--keyring", key.keyring, s.url("SUMS.asc")]).run().status == 0)
        #expect(try Subprocess(gpgv, ["--keyring", other.keyring, s.url("SUMS.sign"), file]).run().status != 0)
        key.stop()
        other.stop()
        #expect(try Subprocess("/usr/bin/pgrep", ["-f", "gpg-agent --homedir \(s.path)"]).run().status == 1)
    }

    // MARK: pulls

    /// A scratch directory with a test server, a cache and a puller whose
    /// messages go to a file.
    final class Setup: @unchecked Sendable {
        let s = Scratch()
        let server: TestImageServer
        let cache: ImageCache
        let log: String
        let logFd: Int32

        init(faults: TestImageServer.Faults = .init(), cacheDirectory: String? = nil) throws {
            server = try TestImageServer(directory: s.url("www"), state: s.url("server"), faults: faults)
            cache = ImageCache(environment: ["XDG_CACHE_HOME": cacheDirectory ?? s.url("cache")])
            log = try s.write("messages", "")
            logFd = open(log, O_WRONLY | O_APPEND | O_CLOEXEC)
        }

        deinit {
            server.stop()
            close(logFd)
        }

        func puller(allowUnverified: Bool = false) -> ImagePuller {
            let stream = OutputStream(fd: logFd)
            return ImagePuller(cache: cache, mirror: ImageMirror(), allowUnverified: allowUnverified, architecture: "x86_64",
                               console: Console(command: "vmimage", out: stream, err: stream), environment: ProcessInfo.processInfo.environment)
        }

        var messages: String { textIfPresent(log) }

        /// A file of `size` pseudo-random bytes served as `name`, and its sha512 digest.
        @discardableResult
        func image(_ name: String, size: Int = 300_000, seed: UInt64 = 1) throws -> ImageDigest {
            var x = seed &* 0x9E37_79B9_7F4A_7C15 | 1
            var bytes = [UInt8](repeating: 0, count: size)
            for i in 0..<size {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17
                bytes[i] = UInt8(truncatingIfNeeded: x)
            }
            let path = try s.writeBytes("www/" + name, bytes)
            return try digest(path, .sha512)
        }

        func digest(_ path: String, _ alg: ImageDigest.Algorithm) throws -> ImageDigest {
            let r = try Subprocess("/usr/bin/\(alg.rawValue)sum", [path]).run()
            return ImageDigest(alg, hex: String(r.stdoutText.prefix(alg.hexLength)))
        }

        func entry(_ name: String = "testos", url: String) -> ImageEntry {
            var e = ImageEntry(name: name, file: s.url("share/images/\(name).image"), kind: .cloud)
            e.urls["x86_64"] = url
            return e
        }

        /// Names in the cache directory, `.partial/` excepted.
        func cached() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: cache.directory)) ?? []).filter { $0 != ".partial" }.sorted()
        }

        /// Data files waiting in `.partial/` (locks excepted).
        func partials() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: cache.partialDirectory)) ?? []).filter { !$0.hasSuffix(".lock") }.sorted()
        }
    }

    @Test(.requires("python3", "curl"))
    func pinnedDigestPullStoresAReadOnlyFileAndRecord() throws {
        let t = try Setup()
        let digest = try t.image("os.qcow2")
        var e = t.entry(url: t.server.url("os.qcow2"))
        e.digests["x86_64"] = digest
        let image = try t.puller().pull(e)
        let stem = "sha512-\(digest.hex)"
        #expect(image.path == t.cache.directory + "/\(stem).qcow2")
        #expect(image.digest == digest && image.entry == "testos" && image.url == t.server.url("os.qcow2") && image.size == 300_000)
        #expect(t.cached() == ["\(stem).qcow2", "\(stem).record"])
        #expect(t.partials().isEmpty)
        #expect(FileSystem.mode(image.path) == 0o444)
        #expect(FileSystem.mode(t.cache.directory + "/\(stem).record") == 0o444)
        #expect(try Data(contentsOf: URL(fileURLWithPath: image.path)) == Data(contentsOf: URL(fileURLWithPath: t.s.url("www/os.qcow2"))))
        let record = try String(contentsOfFile: t.cache.directory + "/\(stem).record", encoding: .utf8)
        #expect(record.contains("image_name='testos'\n") && record.contains("image_url='\(t.server.url("os.qcow2"))'\n")
                && record.contains("image_digest='\(digest)'\n") && record.contains("image_size='300000'\n"))
        #expect(t.cache.image(digest) == image)
        #expect(t.cache.newest(entry: "testos") == image)
        #expect(try t.cache.images() == [image])
        // Cached: a second pull asks nothing of the network.
        #expect(try t.puller().pull(e) == image)
        #expect(t.server.gets("os.qcow2").count == 1)
        #expect(t.messages.contains("NOTICE: testos: \(t.server.url("os.qcow2")) is plain http; its integrity comes from the pinned digest"))
    }

    /// A Debian-style SHA512SUMS with a detached, armored signature.
    @Test(.requires("python3", "curl", "gpg", "gpgv", "gpgconf"))
    func checksumFileWithDetachedSignature() throws {
        let t = try Setup()
        let key = try TestSigningKey(directory: t.s.url("key"))
        defer { key.stop() }
        let digest = try t.image("debian.qcow2")
        let other = try t.image("other.qcow2", seed: 2)
        let sums = try t.s.write("www/SHA512SUMS", "\(other.hex)  other.qcow2\n\(digest.hex)  debian.qcow2\n")
        try key.detachSign(sums, to: t.s.url("www/SHA512SUMS.sign"))
        var e = t.entry(url: t.server.url("debian.qcow2"))
        e.checksums["x86_64"] = t.server.url("SHA512SUMS")
        e.signatures["x86_64"] = t.server.url("SHA512SUMS.sign")
        e.keyring = key.keyring
        let image = try t.puller().pull(e)
        #expect(image.digest == digest)
        #expect(t.cached() == ["sha512-\(digest.hex).qcow2", "sha512-\(digest.hex).record"])
        #expect(t.messages.contains("its integrity comes from the signed checksum file"))
        // Pulling again reads the checksum file anew but downloads no image.
        #expect(try t.puller().pull(e) == image)
        #expect(t.server.gets("debian.qcow2").count == 1)
        #expect(t.server.gets("SHA512SUMS").count == 2)
        #expect(t.partials().isEmpty)
    }

    /// A Fedora-style clear-signed CHECKSUM in the BSD format: only its
    /// signed part counts, so a line put in front of the armor is ignored;
    /// the keyring is ASCII-armored.
    @Test(.requires("python3", "curl", "gpg", "gpgv", "gpgconf"))
    func clearSignedChecksumFile() throws {
        let t = try Setup()
        let key = try TestSigningKey(directory: t.s.url("key"))
        defer { key.stop() }
        let digest = try t.image("Fedora-Cloud.qcow2")
        let sha256 = try t.digest(t.s.url("www/Fedora-Cloud.qcow2"), .sha256)
        let plain = try t.s.write("CHECKSUM.plain", "# Fedora-Cloud.qcow2: 300000 bytes\nSHA256 (Fedora-Cloud.qcow2) = \(sha256.hex)\n- not a checksum line\n")
        try key.clearSign(plain, to: t.s.url("signed"))
        let forged = "SHA256 (Fedora-Cloud.qcow2) = \(String(repeating: "0", count: 64))\n"
        try t.s.write("www/CHECKSUM", forged + (try t.s.read("signed")))
        var e = t.entry(url: t.server.url("Fedora-Cloud.qcow2"))
        e.checksums["x86_64"] = t.server.url("CHECKSUM")
        // Armored, as distribution-gpg-keys ships Fedora's key.
        e.keyring = key.armoredKeyring
        let image = try t.puller().pull(e)
        #expect(image.digest == sha256)
        #expect(digest != sha256)
        #expect(t.cached() == ["sha256-\(sha256.hex).qcow2", "sha256-\(sha256.hex).record"])
    }

    /// cfg_images_mirror rewrites the image's, the checksum file's and the
    /// signature's URLs: an entry naming a distribution's https server is
    /// pulled from the local one.
    @Test(.requires("python3", "curl", "gpg", "gpgv", "gpgconf"))
    func mirrorRewritesEveryURL() throws {
        let t = try Setup()
        let key = try TestSigningKey(directory: t.s.url("key"))
        defer { key.stop() }
        let digest = try t.image("pub/debian.qcow2")
        let sums = try t.s.write("www/pub/SHA512SUMS", "\(digest.hex)  debian.qcow2\n")
        try key.detachSign(sums, to: t.s.url("www/pub/SHA512SUMS.sign"))
        var e = t.entry(url: "https://cloud.example.invalid/images/debian.qcow2")
        e.checksums["x86_64"] = "https://cloud.example.invalid/images/SHA512SUMS"
        e.signatures["x86_64"] = "https://cloud.example.invalid/images/SHA512SUMS.sign"
        e.keyring = key.keyring
        var p = t.puller()
        p.mirror = try ImageMirror("https://cloud.example.invalid/images/=\(t.server.url("pub/"))")
        let image = try p.pull(e)
        #expect(image.digest == digest && image.url == t.server.url("pub/debian.qcow2"))
        #expect(t.server.gets("pub/debian.qcow2").count == 1 && t.server.gets("pub/SHA512SUMS.sign").count == 1)
    }

    @Test(.requires("python3", "curl", "gpg", "gpgv", "gpgconf"))
    func wrongSignatureIsRefusedBeforeAnyDownload() throws {
        let t = try Setup()
        let key = try TestSigningKey(directory: t.s.url("key"))
        defer { key.stop() }
        let stranger = try TestSigningKey(directory: t.s.url("stranger"))
        defer { stranger.stop() }
        let digest = try t.image("debian.qcow2")
        let sums = try t.s.write("www/SHA512SUMS", "\(digest.hex)  debian.qcow2\n")
        try stranger.detachSign(sums, to: t.s.url("www/SHA512SUMS.sign"))
        var e = t.entry(url: t.server.url("debian.qcow2"))
        e.checksums["x86_64"] = t.server.url("SHA512SUMS")
        e.signatures["x86_64"] = t.server.url("SHA512SUMS.sign")
        e.keyring = key.keyring
        let err = expectError { _ = try t.puller().pull(e) }
        #expect(err?.subject == "testos")
        #expect(err?.message.contains("bad signature of \(t.server.url("SHA512SUMS")) for the keyring \(key.keyring)") == true, "\(String(describing: err))")
        #expect(err.map { !$0.description.contains("\n") } == true)
        #expect(t.server.gets("debian.qcow2").isEmpty)
        #expect(t.cached().isEmpty && t.partials().isEmpty)
        // A clear-signed file from the stranger is refused too.
        try stranger.clearSign(sums, to: t.s.url("www/SUMS.asc"))
        e.checksums["x86_64"] = t.server.url("SUMS.asc")
        e.signatures = [:]
        let err2 = expectError { _ = try t.puller().pull(e) }
        #expect(err2?.message.contains("bad signature of \(t.server.url("SUMS.asc"))") == true, "\(String(describing: err2))")
        #expect(t.cached().isEmpty)
    }

    @Test(.requires("python3", "curl", "gpg", "gpgv", "gpgconf"))
    func checksumFileWithoutTheImagesLine() throws {
        let t = try Setup()
        let key = try TestSigningKey(directory: t.s.url("key"))
        defer { key.stop() }
        let other = try t.image("other.qcow2")
        try t.image("debian.qcow2", seed: 3)
        let sums = try t.s.write("www/SHA512SUMS", "\(other.hex)  other.qcow2\n")
        try key.detachSign(sums, to: t.s.url("www/SHA512SUMS.sign"))
        var e = t.entry(url: t.server.url("debian.qcow2"))
        e.checksums["x86_64"] = t.server.url("SHA512SUMS")
        e.signatures["x86_64"] = t.server.url("SHA512SUMS.sign")
        e.keyring = key.keyring
        let err = expectError { _ = try t.puller().pull(e) }
        #expect(err?.description == "testos: \(t.server.url("SHA512SUMS")): the checksum file has no line for debian.qcow2 (the image \(t.server.url("debian.qcow2")))")
        #expect(t.server.gets("debian.qcow2").isEmpty)
        #expect(t.cached().isEmpty && t.partials().isEmpty)
    }

    /// The download's digest differs from the pinned one: the message says
    /// which entry, URL, expected and found, and nothing stays behind.
    @Test(.requires("python3", "curl"))
    func corruptImageIsRemoved() throws {
        let t = try Setup()
        let good = try t.image("os.qcow2")
        let bad = try t.image("os.qcow2", seed: 9)
        var e = t.entry(url: t.server.url("os.qcow2"))
        e.digests["x86_64"] = good
        let err = expectError { _ = try t.puller().pull(e) }
        #expect(err?.description == "testos: \(t.server.url("os.qcow2")): the download's digest is \(bad), expected \(good) from the pinned image_digest_x86_64; the download was removed")
        #expect(t.cached().isEmpty && t.partials().isEmpty)
    }

    /// The server drops the connection half-way: the error says the bytes
    /// are kept, and the next pull asks only for the rest.
    @Test(.requires("python3", "curl"))
    func interruptedDownloadResumes() throws {
        let t = try Setup(faults: .init(dropOnce: ["/os.qcow2"]))
        let digest = try t.image("os.qcow2", size: 1_000_000)
        var e = t.entry(url: t.server.url("os.qcow2"))
        e.digests["x86_64"] = digest
        let err = expectError { _ = try t.puller().pull(e) }
        #expect(err?.subject == "testos")
        #expect(err?.message.hasPrefix("cannot download \(t.server.url("os.qcow2")): transfer closed with 500000 bytes remaining to read; the 500000 bytes downloaded are kept and the next pull resumes") == true, "\(String(describing: err))")
        #expect(t.cached().isEmpty)
        #expect(t.partials() == ["sha512-\(digest.hex)"])
        let image = try t.puller().pull(e)
        #expect(image.digest == digest && image.size == 1_000_000)
        let gets = t.server.gets("os.qcow2")
        #expect(gets.map(\.range) == [nil, "bytes=500000-"])
        #expect(gets.map(\.bytes) == [500_000, 500_000])
        #expect(t.partials().isEmpty)
    }

    @Test(.requires("python3", "curl"))
    func notFoundAndRedirectLoopAreOneLineErrors() throws {
        let t = try Setup(faults: .init(redirectLoop: ["/loop.qcow2"], status: ["/gone.qcow2": 410]))
        var e = t.entry(url: t.server.url("missing.qcow2"))
        e.digests["x86_64"] = ImageDigest(.sha256, hex: String(repeating: "a", count: 64))
        let err = expectError { _ = try t.puller().pull(e) }
        #expect(err?.description == "testos: cannot download \(t.server.url("missing.qcow2")): the requested URL returned error: 404")
        e.urls["x86_64"] = t.server.url("gone.qcow2")
        #expect(expectError { _ = try t.puller().pull(e) }?.message.hasSuffix("returned error: 410") == true)
        e.urls["x86_64"] = t.server.url("loop.qcow2")
        let loop = expectError { _ = try t.puller().pull(e) }
        #expect(loop?.description.hasPrefix("testos: cannot download \(t.server.url("loop.qcow2")): too many redirects (a redirect loop?)") == true, "\(String(describing: loop))")
        #expect(t.server.gets("loop.qcow2").count == 11)
        #expect(t.cached().isEmpty && t.partials().isEmpty)
    }

    /// A cache on a full filesystem: the partial download is removed (it
    /// holds the space) and the error says so.
    @Test(.requires("python3", "curl"), .requiresRoot)
    func fullDiskRemovesThePartialDownload() throws {
        let s = Scratch()
        try s.mkdir("small")
        let m = try Subprocess("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", s.url("small")]).run()
        guard m.status == 0 else {
            Issue.record(Comment(rawValue: "cannot mount a small tmpfs (\(m.stderrText)): needs root"))
            return
        }
        defer { _ = try? Subprocess("/bin/umount", [s.url("small")]).run() }
        let t = try Setup(cacheDirectory: s.url("small"))
        let digest = try t.image("big.qcow2", size: 3 << 20)
        var e = t.entry(url: t.server.url("big.qcow2"))
        e.digests["x86_64"] = digest
        let err = expectError { _ = try t.puller().pull(e) }
        #expect(err?.subject == "testos")
        #expect(err?.message.hasPrefix("cannot download \(t.server.url("big.qcow2")): ") == true)
        #expect(err?.message.hasSuffix("cannot write: no space left on device; the partial download was removed") == true, "\(String(describing: err))")
        #expect(t.cached().isEmpty && t.partials().isEmpty)
    }

    /// Two pulls of one image at once: one downloads, the other waits for
    /// the lock and finds it done; the server sees one GET.
    @Test(.requires("python3", "curl"))
    func concurrentPullsDownloadOnce() throws {
        let t = try Setup(faults: .init(throttle: 1_000_000))
        let digest = try t.image("os.qcow2", size: 600_000)
        var e = t.entry(url: t.server.url("os.qcow2"))
        e.digests["x86_64"] = digest
        let results = Results()
        let entry = e
        let threads = (0..<2).map { _ in
            Thread {
                let r = Result { try t.puller().pull(entry) }
                results.add(r)
            }
        }
        threads.forEach { $0.start() }
        #expect(waitUntil(60) { results.count == 2 })
        for r in results.all { #expect(try r.get().digest == digest) }
        #expect(t.server.gets("os.qcow2").count == 1)
        #expect(t.messages.contains("testos: waiting for another command downloading \(t.server.url("os.qcow2"))"))
        #expect(t.cached() == ["sha512-\(digest.hex).qcow2", "sha512-\(digest.hex).record"])
    }

    final class Results: @unchecked Sendable {
        private let lock = NSLock()
        private var items: [Result<ImageCache.Image, Error>] = []
        func add(_ r: Result<ImageCache.Image, Error>) { lock.withLock { items.append(r) } }
        var count: Int { lock.withLock { items.count } }
        var all: [Result<ImageCache.Image, Error>] { lock.withLock { items } }
    }

    /// Nothing to verify against: refused, unless cfg_images_unverified=yes,
    /// and even then never over plain http.
    @Test(.requires("python3", "curl"))
    func unverifiedEntryIsRefused() throws {
        let t = try Setup()
        try t.image("os.qcow2")
        let e = t.entry(url: t.server.url("os.qcow2"))
        #expect(expectError { _ = try t.puller().pull(e) }?.description
            == "testos: \(t.server.url("os.qcow2")): the entry has nothing to verify the image with (no image_digest_x86_64 or image_checksums_x86_64); cfg_images_unverified=yes uses it anyway")
        #expect(expectError { _ = try t.puller(allowUnverified: true).pull(e) }?.message.contains("plain http:// image needs a pinned digest or a signed checksum file, even with cfg_images_unverified=yes") == true)
        var unsigned = e
        unsigned.checksums["x86_64"] = t.server.url("SHA512SUMS")
        #expect(expectError { _ = try t.puller().pull(unsigned) }?.message.contains("plain http:// image needs a pinned digest or a signed checksum file (image_keyring)") == true)
        #expect(t.server.gets("os.qcow2").isEmpty)
        #expect(t.cached().isEmpty)
    }

    /// HTTPS: a certificate curl cannot verify ends the pull (no option
    /// turns the check off); trusted (CURL_CA_BUNDLE, as a user's own CA
    /// would be), an unsigned checksum file over https is enough, and an
    /// entry with nothing to verify is used only with allowUnverified, with
    /// a NOTICE.
    @Test(.requires("python3", "curl", "openssl"))
    func httpsIsVerifiedAndUnverifiedEntriesNeedTheSetting() throws {
        let s = Scratch()
        let tls = try TestImageServer.makeCertificate(in: s.url("tls"))
        let t = try Setup(faults: .init(tls: tls))
        let digest = try t.image("os.qcow2")
        try t.s.write("www/SHA512SUMS", "\(digest.hex)  os.qcow2\n")
        var e = t.entry(url: t.server.url("os.qcow2"))
        e.checksums["x86_64"] = t.server.url("SHA512SUMS")
        let untrusted = expectError { _ = try t.puller().pull(e) }
        #expect(untrusted?.description.hasPrefix("testos: cannot download \(t.server.url("SHA512SUMS")): SSL certificate problem") == true, "\(String(describing: untrusted))")
        #expect(t.server.gets("os.qcow2").isEmpty && t.cached().isEmpty)
        func trusting(_ p: ImagePuller) -> ImagePuller {
            var p = p
            p.environment["CURL_CA_BUNDLE"] = tls.certificate
            return p
        }
        let image = try trusting(t.puller()).pull(e)
        #expect(image.digest == digest)
        #expect(!t.messages.contains("NOTICE"))
        let bare = t.entry("bare", url: t.server.url("os.qcow2"))
        #expect(expectError { _ = try trusting(t.puller()).pull(bare) }?.message.contains("nothing to verify the image with") == true)
        let unverified = try trusting(t.puller(allowUnverified: true)).pull(bare)
        #expect(unverified.digest == (try t.digest(t.s.url("www/os.qcow2"), .sha256)))
        #expect(unverified.entry == "bare")
        #expect(t.messages.contains("NOTICE: bare: \(t.server.url("os.qcow2")) is used unverified (cfg_images_unverified=yes): nothing checks its content"))
    }

    /// A `latest` URL whose checksum file now lists a newer build: the new
    /// file goes beside the old, and `newest(entry:)` is the new one.
    @Test(.requires("python3", "curl", "gpg", "gpgv", "gpgconf"))
    func newBuildIsStoredBesideTheOld() throws {
        let t = try Setup()
        let key = try TestSigningKey(directory: t.s.url("key"))
        defer { key.stop() }
        var e = t.entry(url: t.server.url("latest/os.img"))
        e.checksums["x86_64"] = t.server.url("latest/SHA256SUMS")
        e.signatures["x86_64"] = t.server.url("latest/SHA256SUMS.gpg")
        e.keyring = key.keyring
        var pulled: [ImageCache.Image] = []
        for seed in [UInt64(1), 2] {
            try t.image("latest/os.img", seed: seed)
            let d = try t.digest(t.s.url("www/latest/os.img"), .sha256)
            let sums = try t.s.write("www/latest/SHA256SUMS", "\(d.hex) *os.img\n")
            try key.detachSign(sums, to: t.s.url("www/latest/SHA256SUMS.gpg"), armor: false)
            pulled.append(try t.puller().pull(e))
            #expect(pulled.last?.digest == d)
        }
        #expect(pulled[0].path != pulled[1].path)
        #expect(try t.cache.images().count == 2)
        #expect(FileManager.default.fileExists(atPath: pulled[0].path) && FileManager.default.fileExists(atPath: pulled[1].path))
        #expect(t.cache.newest(entry: "testos")?.digest == pulled[1].digest || pulled[0].date == pulled[1].date)
    }

    /// A link planted in `.partial/` where the download goes is refused,
    /// never written through.
    @Test(.requires("python3", "curl"))
    func plantedLinkInThePartialDirectoryIsRefused() throws {
        let t = try Setup()
        let digest = try t.image("os.qcow2")
        var e = t.entry(url: t.server.url("os.qcow2"))
        e.digests["x86_64"] = digest
        try t.cache.prepare()
        let victim = try t.s.write("victim", "keep\n")
        try FileManager.default.createSymbolicLink(atPath: t.cache.partialDirectory + "/sha512-\(digest.hex)", withDestinationPath: victim)
        let err = expectError { _ = try t.puller().pull(e) }
        #expect(err?.message.contains("refusing a symbolic link") == true, "\(String(describing: err))")
        #expect(try t.s.read("victim") == "keep\n")
    }

    // MARK: checksum files

    @Test func checksumListFormats() throws {
        let a = String(repeating: "a", count: 64), b = String(repeating: "b", count: 128), c = String(repeating: "c", count: 64)
        let text = """
        # comment
        \(a)  debian-12-genericcloud-amd64.qcow2
        \(b) *noble-server-cloudimg-amd64.img
        SHA256 (Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2) = \(c)
        SHA512 (Rocky-9.qcow2) = \(b)
        SHA2-256(alma.qcow2)= \(a)
        \(a)  ./sub/arch.qcow2
        \\\(a)  new\\nline\\\\x
        deadbeef  short.qcow2
        garbage
        """
        let list = ChecksumList(text: text)
        #expect(list.digest(for: "debian-12-genericcloud-amd64.qcow2") == ImageDigest(.sha256, hex: a))
        #expect(list.digest(for: "noble-server-cloudimg-amd64.img") == ImageDigest(.sha512, hex: b))
        #expect(list.digest(for: "Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2") == ImageDigest(.sha256, hex: c))
        #expect(list.digest(for: "Rocky-9.qcow2") == ImageDigest(.sha512, hex: b))
        #expect(list.digest(for: "alma.qcow2") == ImageDigest(.sha256, hex: a))
        #expect(list.digest(for: "arch.qcow2") == ImageDigest(.sha256, hex: a))
        #expect(list.digest(for: "new\nline\\x") == ImageDigest(.sha256, hex: a))
        #expect(list.digest(for: "short.qcow2") == nil)
        #expect(list.lines.count == 7)
        // Both algorithms: the stronger; two digests of one algorithm: none.
        let both = ChecksumList(text: "\(a)  x\n\(b)  x\n\(a)  y\n\(c)  y\n")
        #expect(both.digest(for: "x") == ImageDigest(.sha512, hex: b))
        #expect(both.digest(for: "y") == nil)
        // Clear-signed: armor, Hash: header, dash-escaping; text outside ignored.
        let signed = """
        \(c)  outside.qcow2
        -----BEGIN PGP SIGNED MESSAGE-----
        Hash: SHA256

        - \(a)  inside.qcow2\r
        \(b)  plain.qcow2
        -----BEGIN PGP SIGNATURE-----

        iQEzBAEBCAAdFiEE
        -----END PGP SIGNATURE-----
        \(c)  after.qcow2
        """
        let s = ChecksumList(text: signed)
        #expect(s.lines.map(\.name) == ["inside.qcow2", "plain.qcow2"])
        #expect(s.digest(for: "outside.qcow2") == nil && s.digest(for: "after.qcow2") == nil)
        #expect(throws: VMToolsError.self) { try ChecksumList(bytes: [UInt8](repeating: 0x20, count: ChecksumList.maxSize + 1), source: "u") }
        #expect(ImagePuller.fileName(of: "https://x/a/b/os.qcow2?x=1#y") == "os.qcow2")
        #expect(ImageCache.fileExtension(of: "https://x/os.QCOW2") == "qcow2")
        #expect(ImageCache.fileExtension(of: "https://x/latest") == "img")
        #expect(ImageCache.fileExtension(of: "https://x/a.record") == "img")
    }
}

