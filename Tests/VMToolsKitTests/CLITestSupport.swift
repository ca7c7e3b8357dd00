import Foundation
import Testing
@testable import VMToolsKit

/// Runs the built `vmtools` binary through symlinks named like the commands,
/// with HOME, XDG_CONFIG_HOME and the system directories in a scratch tree so
/// the machine's /etc/vmtools never matters.
struct CLI {
    let scratch: Scratch
    var bin: String { scratch.url("bin") }
    var environment: [String: String]

    struct Result {
        var status: Int32
        var out: String
        var err: String
        var outLines: [String] { out.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
    }

    init(_ scratch: Scratch) throws {
        self.scratch = scratch
        try scratch.mkdir("bin")
        try scratch.mkdir("home")
        try scratch.mkdir("etc")
        try scratch.mkdir("share")
        for name in VMTools.commands.map({ $0.spec.name }) + ["vmtools", "vmbogus"] where !scratch.exists("bin/\(name)") {
            try FileManager.default.createSymbolicLink(atPath: scratch.url("bin/\(name)"), withDestinationPath: Repo.binary)
        }
        environment = [
            "HOME": scratch.url("home"), "XDG_CONFIG_HOME": scratch.url("xdg"),
            "VMTOOLS_SYSCONFDIR": scratch.url("etc"), "VMTOOLS_DATADIR": scratch.url("share"),
            "PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C.UTF-8",
        ]
    }

    /// Output goes to files, so a full pipe can never block the child.
    func run(_ name: String, _ args: [String] = [], cwd: String? = nil, env extra: [String: String] = [:]) throws -> Result {
        // Without a deadline the run always finishes.
        try run(name, args, cwd: cwd, environment: environment.merging(extra) { $1 }, within: nil)!
    }

    /// The same, with a whole environment, another executable (an absolute
    /// `name`) and a deadline: past it the child is killed, an issue is
    /// recorded and the result is nil, so a hang fails the test instead of
    /// stalling the suite.
    func run(_ name: String, _ args: [String], cwd: String? = nil, environment: [String: String], within seconds: Double?,
             sourceLocation: SourceLocation = #_sourceLocation) throws -> Result? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: name.hasPrefix("/") ? name : bin + "/" + name)
        p.arguments = args
        p.environment = environment
        p.currentDirectoryURL = URL(fileURLWithPath: cwd ?? scratch.path)
        let id = UUID().uuidString
        let outPath = NSTemporaryDirectory() + "vmtools-out-\(id)", errPath = NSTemporaryDirectory() + "vmtools-err-\(id)"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        defer {
            try? FileManager.default.removeItem(atPath: outPath)
            try? FileManager.default.removeItem(atPath: errPath)
        }
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        var finished = true
        if let seconds {
            finished = waitUntil(seconds) { !p.isRunning }
            if !finished {
                kill(p.processIdentifier, SIGKILL)
                Issue.record("\(name) \(args.joined(separator: " ")) still ran after \(seconds) s", sourceLocation: sourceLocation)
            }
        }
        p.waitUntilExit()
        try out.close()
        try err.close()
        guard finished else { return nil }
        return Result(status: p.terminationStatus,
                      out: try String(contentsOfFile: outPath, encoding: .utf8),
                      err: try String(contentsOfFile: errPath, encoding: .utf8))
    }
}

/// QEMU is a real dependency: missing in CI is a failure, elsewhere a skip with a reason.
func requireTool(_ name: String) -> String? {
    for dir in ["/usr/local/bin", "/usr/bin", "/bin"] where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
        return "\(dir)/\(name)"
    }
    if ProcessInfo.processInfo.environment["CI"] == "true" {
        Issue.record("\(name) is not installed, and CI must run this test (Tests/setup.sh test installs it)")
    } else {
        print("SKIP: \(name) is not installed; install it (bash Tests/setup.sh test does) to run this test")
    }
    return nil
}

/// Polls `condition` until it holds or `seconds` pass: never a bare sleep.
func waitUntil(_ seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(20_000)
    }
    return condition()
}
