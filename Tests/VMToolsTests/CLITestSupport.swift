import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

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
        let binary = try Repo.binary
        for name in VMTools.commands.map({ $0.spec.name }) + ["vmtools", "vmbogus"] where !scratch.exists("bin/\(name)") {
            try FileManager.default.createSymbolicLink(atPath: scratch.url("bin/\(name)"), withDestinationPath: binary)
        }
        // The test guests are host files VMs' own settings name from outside
        // their trees: the installation layer allows them, as an
        // administrator would a directory of images (vm.settings(5), HOST PATHS).
        if !scratch.exists("share/vmtools.conf") {
            let guests = [Guest.directory, CloudGuest.directory].map { URL(fileURLWithPath: $0).resolvingSymlinksInPath().path }
            try scratch.write("share/vmtools.conf", "cfg_host_paths='\(guests.joined(separator: ":"))'\n")
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

/// Tools the tests need, looked up where Tests/setup.sh installs them.
enum Tools {
    static let ci = ProcessInfo.processInfo.environment["CI"] == "true"

    static func path(_ name: String) -> String? {
        ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"].map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static func missing(_ names: [String]) -> [String] { names.filter { path($0) == nil } }
}

extension Trait where Self == ConditionTrait {
    /// Outside CI a test whose tools are missing is reported skipped, naming
    /// them; in CI it runs, and `requireTool` inside fails it.
    static func requires(_ tools: String...) -> Self {
        let missing = Tools.missing(tools)
        return .enabled(if: missing.isEmpty || Tools.ci,
                        Comment(rawValue: "needs \(missing.joined(separator: ", ")), which is not installed (bash Tests/setup.sh test installs it)"))
    }

    /// The test guest (Tests/Guest) is built with QEMU, xorriso, objcopy,
    /// mtools and sfdisk; the tests that boot it make disks with qemu-img.
    static var requiresGuest: Self { .requires("qemu-system-x86_64", "qemu-img", "xorriso", "objcopy", "mcopy", "sfdisk") }

    /// Root runs vmtools as another user (setpriv) and mounts filesystems.
    static var requiresRoot: Self {
        .enabled(if: (geteuid() == 0 && Tools.path("setpriv") != nil) || Tools.ci,
                 "needs root and setpriv (another user for vmdown -a, a read-only bind mount, a small tmpfs)")
    }
}

/// The tool's path. Missing, it fails the test: in CI it must run, and
/// elsewhere the test's `.requires` trait should have skipped it.
func requireTool(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) -> String? {
    if let path = Tools.path(name) { return path }
    Issue.record(Comment(rawValue: Tools.ci ? "\(name) is not installed, and CI must run this test (Tests/setup.sh test installs it)"
                                            : "\(name) is not installed: give the test .requires(\"\(name)\") so it is reported skipped"),
                 sourceLocation: sourceLocation)
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
