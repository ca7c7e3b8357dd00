import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// A scratch directory per test, removed when the value goes away.
final class Scratch {
    let path: String

    init() {
        var template = Array((NSTemporaryDirectory() + "vmtools-test.XXXXXX").utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        // Canonical, so paths compare equal to what vmtools prints.
        path = FileManager.default.fileExists(atPath: String(cString: p!)) ? URL(fileURLWithPath: String(cString: p!)).resolvingSymlinksInPath().path : String(cString: p!)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func url(_ rel: String) -> String { rel.isEmpty ? path : path + "/" + rel }

    @discardableResult
    func write(_ rel: String, _ text: String) throws -> String {
        let p = url(rel)
        try FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: p))
        return p
    }

    /// A script to be executed, put in place by install(1) in a child
    /// process. Written from this process, its inode could still be open for
    /// writing in a child another test thread is spawning at that moment,
    /// and executing it would then fail with ETXTBSY ("Text file busy").
    @discardableResult
    func writeScript(_ rel: String, _ text: String, mode: Int = 0o755) throws -> String {
        let p = url(rel)
        let source = url(".script-\(UUID().uuidString)")
        try Data(text.utf8).write(to: URL(fileURLWithPath: source))
        defer { try? FileManager.default.removeItem(atPath: source) }
        let r = try Subprocess("/usr/bin/install", ["-D", "-m", String(mode, radix: 8), source, p]).run()
        guard r.status == 0 else { throw VMToolsError(.failure, p, "install failed: \(r.stderrText)") }
        return p
    }

    @discardableResult
    func writeBytes(_ rel: String, _ bytes: [UInt8]) throws -> String {
        let p = url(rel)
        try FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    func read(_ rel: String) throws -> String {
        try String(contentsOfFile: url(rel), encoding: .utf8)
    }

    func exists(_ rel: String) -> Bool {
        var st = stat()
        return lstat(url(rel), &st) == 0
    }

    func mkdir(_ rel: String) throws {
        try FileManager.default.createDirectory(atPath: url(rel), withIntermediateDirectories: true)
    }

    /// Configuration roots that never touch the machine's /etc/vmtools.
    var paths: SystemPaths {
        SystemPaths(dataDir: url("share"), sysconfDir: url("etc"), userDir: url("user/vmtools"))
    }
}

enum Repo {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
        }
        return FileManager.default.currentDirectoryPath
    }()

    /// The `vmtools` binary next to the test bundle (swift build puts both in
    /// the same products directory): the one built from these sources, never
    /// another build's, so a missing one is an error rather than a fallback.
    static var binary: String {
        get throws {
            let candidates = [
                Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("vmtools").path,
                Bundle.main.bundleURL.appendingPathComponent("vmtools").path,
            ]
            guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
                throw VMToolsError(.failure, candidates[1], "no vmtools binary next to the test bundle (build it with swift build --build-tests)")
            }
            return found
        }
    }
}

func resolver(_ s: Scratch, _ cli: CommandLineSettings = .init(), warnings: WarningSink? = nil) -> SettingsResolver {
    SettingsResolver(paths: s.paths, commandLine: cli, warn: { warnings?.messages.append($0) })
}

final class WarningSink: @unchecked Sendable {
    var messages: [String] = []
}

/// A file's text, "" while it does not exist (a log QEMU has not opened
/// yet); any other error fails the test instead of reading as empty.
func textIfPresent(_ path: String, sourceLocation: SourceLocation = #_sourceLocation) -> String {
    do {
        return try String(contentsOfFile: path, encoding: .utf8)
    } catch {
        if !FileManager.default.fileExists(atPath: path) { return "" }
        Issue.record("cannot read \(path): \(error)", sourceLocation: sourceLocation)
        return ""
    }
}

/// Expects a VMToolsError and returns it.
@discardableResult
func expectError(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> VMToolsError? {
    do {
        try body()
        Issue.record("expected an error", sourceLocation: sourceLocation)
        return nil
    } catch let e as VMToolsError {
        return e
    } catch {
        Issue.record("unexpected error type: \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
