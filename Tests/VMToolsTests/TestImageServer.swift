import Foundation
import Testing
@testable import VMToolsCore

/// The image tests' HTTP server (Tests/Support/image-server.py): serves a
/// directory on 127.0.0.1 at a port the kernel picks, with Range requests,
/// and logs every request so a test can count what was downloaded. Faults
/// for the error paths: a connection dropped half-way through a file (the
/// first GET only, so a resume works), a status code, a redirect loop, a
/// slow body (two pulls overlap). Stopped by pid (`stop`, or when the value
/// goes away); the script also exits when the test process dies.
final class TestImageServer {
    /// One logged request.
    struct Request: Equatable {
        var method: String
        var path: String
        /// The Range header (`bytes=N-`), nil without one.
        var range: String?
        var status: Int
        /// Body bytes sent (half the file for a dropped connection).
        var bytes: Int
    }

    struct Faults {
        var dropOnce: [String] = []
        var redirectLoop: [String] = []
        var status: [String: Int] = [:]
        /// Bytes a second for every body; 0: as fast as it goes.
        var throttle = 0
        /// HTTPS with this PEM certificate and key (`TestImageServer.makeCertificate`).
        var tls: (certificate: String, key: String)?
        init(dropOnce: [String] = [], redirectLoop: [String] = [], status: [String: Int] = [:], throttle: Int = 0,
             tls: (certificate: String, key: String)? = nil) {
            self.tls = tls
            self.dropOnce = dropOnce
            self.redirectLoop = redirectLoop
            self.status = status
            self.throttle = throttle
        }
    }

    static let script = Repo.root + "/Tests/Support/image-server.py"

    /// The served directory: put files here, before or while it runs.
    let directory: String
    let state: String
    let port: Int
    let scheme: String
    private var running: Subprocess.Running?

    /// `http://127.0.0.1:PORT` (https with a certificate), no slash at the end.
    var base: String { "\(scheme)://127.0.0.1:\(port)" }
    func url(_ path: String) -> String { base + (path.hasPrefix("/") ? path : "/" + path) }

    /// Starts serving `directory` (made if missing); `state` (made if
    /// missing) gets the port and request log. Throws when it does not
    /// listen within 20 s.
    init(directory: String, state: String, faults: Faults = Faults()) throws {
        self.directory = directory
        self.state = state
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        var args = [Self.script, directory, state]
        for p in faults.dropOnce { args += ["--drop-once", p] }
        for p in faults.redirectLoop { args += ["--redirect-loop", p] }
        for (p, c) in faults.status.sorted(by: { $0.key < $1.key }) { args += ["--status", "\(p)=\(c)"] }
        if faults.throttle > 0 { args += ["--throttle", String(faults.throttle)] }
        if let tls = faults.tls { args += ["--tls", tls.certificate, tls.key] }
        scheme = faults.tls == nil ? "http" : "https"
        let child = try Subprocess("/usr/bin/python3", args).start(output: state + "/server.log")
        running = child
        let portFile = state + "/port"
        var found: Int?
        _ = waitUntil(20) {
            if let t = try? String(contentsOfFile: portFile, encoding: .utf8), let p = Int(t.trimmingCharacters(in: .whitespacesAndNewlines)) {
                found = p
                return true
            }
            return child.exitStatus() != nil
        }
        guard let found else {
            child.terminate()
            running = nil
            let log = (try? String(contentsOfFile: state + "/server.log", encoding: .utf8)) ?? ""
            throw VMToolsError(.failure, Self.script, "the test image server did not start: \(log)")
        }
        port = found
    }

    /// A self-signed certificate for 127.0.0.1 and its key, PEM, in `directory`
    /// (openssl): a client trusts it only when told to (`CURL_CA_BUNDLE`).
    static func makeCertificate(in directory: String) throws -> (certificate: String, key: String) {
        let cert = directory + "/cert.pem", key = directory + "/key.pem"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let r = try Subprocess("/usr/bin/openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                                   "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "2",
                                                   "-keyout", key, "-out", cert]).run()
        guard r.status == 0 else { throw VMToolsError(.failure, cert, "openssl req failed: \(r.stderrText)") }
        return (cert, key)
    }

    /// Every request so far, in the order they were answered.
    func requests() -> [Request] {
        let text = (try? String(contentsOfFile: state + "/requests", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ").map(String.init)
            guard f.count == 5, let status = Int(f[3]), let bytes = Int(f[4]) else { return nil }
            return Request(method: f[0], path: f[1], range: f[2] == "-" ? nil : f[2], status: status, bytes: bytes)
        }
    }

    /// The GET requests of `path`.
    func gets(_ path: String) -> [Request] {
        let p = path.hasPrefix("/") ? path : "/" + path
        return requests().filter { $0.method == "GET" && $0.path == p }
    }

    /// Ends the server (SIGTERM, reaped); idempotent.
    func stop() {
        running?.terminate()
        running = nil
    }

    deinit { stop() }
}
