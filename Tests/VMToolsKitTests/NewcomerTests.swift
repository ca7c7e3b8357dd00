import Foundation
import Testing
@testable import VMToolsKit

/// What a newcomer follows: the README's two commands, the packages they
/// install, completions under a prefix of their own.
@Suite struct NewcomerTests {
    static func read(_ rel: String) throws -> String {
        try String(contentsOfFile: Repo.root + "/" + rel, encoding: .utf8)
    }

    /// The package names of `packages=(…)` and `packages+=(…)` in Tests/setup.sh.
    static func setupPackages() throws -> Set<String> {
        var names = Set<String>()
        for line in try read("Tests/setup.sh").split(separator: "\n") {
            let t = line.trimmingCharacters(in: .whitespaces)
            guard t.hasPrefix("packages=(") || t.hasPrefix("packages+=("), let open = t.firstIndex(of: "("),
                  let close = t.firstIndex(of: ")") else { continue }
            names.formUnion(t[t.index(after: open)..<close].split(separator: " ").map(String.init))
        }
        return names
    }

    @Test func theReadmesTwoCommandsSetUpEverythingAndCIRunsTheSecond() throws {
        let readme = try Self.read("README.md")
        #expect(readme.contains("bash Tests/setup.sh demo"))
        #expect(readme.contains("bash Tests/setup.sh test"))
        let ci = try Self.read(".ci/run")
        #expect(ci.contains("bash Tests/setup.sh test"), ".ci/run must run the README's second command")
        let setup = try Self.read("Tests/setup.sh")
        #expect(setup.contains("apt-get install") && setup.contains("sudo"), "setup.sh installs, through sudo when not root")
        #expect(setup.contains("swift test") && setup.contains("vmup -i"))
        #expect(try Self.setupPackages().isSuperset(of: ["qemu-system-x86", "qemu-utils", "xorriso"]))
    }

    /// Every tool a test asks for with `requireTool` or `.requires` comes from a package
    /// that `Tests/setup.sh` installs (or one every Debian system has).
    @Test(.requires("dpkg")) func setupInstallsEveryToolTheTestsAskFor() throws {
        guard let dpkg = requireTool("dpkg") else { return }
        let installed = try Self.setupPackages()
        var tools = Set<String>()
        let dir = Repo.root + "/Tests/VMToolsKitTests"
        for f in try FileManager.default.contentsOfDirectory(atPath: dir) where f.hasSuffix(".swift") {
            let text = try String(contentsOfFile: dir + "/" + f, encoding: .utf8)
            var rest = Substring(text)
            while let r = rest.range(of: "requireTool(\"") {
                rest = rest[r.upperBound...]
                if let q = rest.firstIndex(of: "\"") { tools.insert(String(rest[..<q])) }
            }
            // `.requires("a", "b")`: every quoted word up to the closing parenthesis.
            rest = Substring(text)
            while let r = rest.range(of: ".requires(\"") {
                rest = rest[rest.index(before: r.upperBound)...]
                let list = rest.prefix { $0 != ")" }
                tools.formUnion(list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                    .filter { $0.hasPrefix("\"") && $0.hasSuffix("\"") && $0.count > 2 }.map { String($0.dropFirst().dropLast()) })
                rest = rest.dropFirst(list.count)
            }
        }
        #expect(tools.isSuperset(of: ["qemu-img", "qemu-io", "xorriso", "setpriv"]), "\(tools.sorted())")
        #expect(tools.contains("qemu-system-x86_64"))
        for tool in tools.sorted() {
            // A tool missing here is a skip of the tests that need it, not this test's business.
            guard let path = Tools.path(tool) else { continue }
            // dpkg knows a file by the path its package ships (/usr/bin or /bin).
            var owner: String?
            for p in [path, "/usr/bin/" + tool, "/bin/" + tool, "/usr/sbin/" + tool, "/sbin/" + tool] {
                let r = try Subprocess(dpkg, ["-S", p]).run()
                if r.status == 0 { owner = r.stdoutText.split(separator: ":").first.map(String.init); break }
            }
            guard let owner else { Issue.record("\(tool): no Debian package ships \(path)"); continue }
            let essential = try Subprocess("/usr/bin/dpkg-query", ["-W", "-f=${Essential}", owner]).run().stdoutText == "yes"
            #expect(installed.contains(owner) || essential, "\(tool) comes from \(owner), which Tests/setup.sh does not install")
        }
    }

    /// README: bash-completion finds completions under another PREFIX through
    /// XDG_DATA_DIRS, laid out as `make install` lays them out.
    @Test(.requires("bash")) func bashFindsCompletionsUnderAnotherPrefixThroughXdgDataDirs() throws {
        guard requireTool("bash") != nil else { return }
        try #require(FileManager.default.fileExists(atPath: "/usr/share/bash-completion/bash_completion"),
                     "bash-completion is not installed (bash Tests/setup.sh test installs it)")
        let s = Scratch()
        let dir = s.url("opt/share/bash-completion/completions")
        try s.mkdir("opt/share/bash-completion/completions")
        try FileManager.default.copyItem(atPath: Repo.root + "/completions/vmtools.bash", toPath: dir + "/vmtools")
        try FileManager.default.createSymbolicLink(atPath: dir + "/vmup", withDestinationPath: "vmtools")
        let script = "source /usr/share/bash-completion/bash_completion; __load_completion vmup; complete -p vmup"
        var env = ProcessInfo.processInfo.environment
        env["HOME"] = s.path
        env["XDG_DATA_DIRS"] = s.url("opt/share") + ":/usr/share"
        let found = try Subprocess("/bin/bash", ["-c", script], environment: env).run()
        #expect(found.status == 0 && found.stdoutText.contains("_vmtools"), "\(found.stdoutText)\(found.stderrText)")
        env["XDG_DATA_DIRS"] = "/usr/share"
        let missed = try Subprocess("/bin/bash", ["-c", script], environment: env).run()
        #expect(!missed.stdoutText.contains("_vmtools"), "found without XDG_DATA_DIRS: the README's advice would be moot")
    }
}

/// The README's tour, replayed: every command of its console block runs
/// (through bash, as typed) and prints what the README shows, but for pids,
/// ports, the banner and the line that depends on the host's KVM.
@Suite struct ReadmeTourTests {
    struct Step {
        var command: String
        var expected: [String]
    }

    static func steps() throws -> [Step] {
        let readme = try NewcomerTests.read("README.md")
        guard let start = readme.range(of: "```console\n$ mkdir -p ~/vms\n"),
              let end = readme.range(of: "\n```", range: start.upperBound..<readme.endIndex) else { return [] }
        var steps: [Step] = [Step(command: "mkdir -p ~/vms", expected: [])]
        for line in readme[start.upperBound..<end.lowerBound].split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("$ ") { steps.append(Step(command: String(line.dropFirst(2)), expected: [])) } else { steps[steps.count - 1].expected.append(String(line)) }
        }
        return steps
    }

    /// What may differ between two runs: pids, ports, column widths, KVM.
    static func normalise(_ lines: [String]) -> [String] {
        lines.filter { !$0.contains("KVM is not usable") }.map { line in
            var l = line.replacingOccurrences(of: "pid [0-9]+", with: "pid N", options: .regularExpression)
            l = l.replacingOccurrences(of: "^[0-9]+ ", with: "N ", options: .regularExpression)
            l = l.replacingOccurrences(of: "127\\.0\\.0\\.1:[0-9]+", with: "127.0.0.1:PORT", options: .regularExpression)
            l = l.replacingOccurrences(of: " +", with: " ", options: .regularExpression)
            return l.trimmingCharacters(in: .whitespaces)
        }
    }

    @Test(.requires("qemu-img", "qemu-system-x86_64")) func theTourPrintsWhatTheReadmeShows() throws {
        guard requireTool("qemu-system-x86_64") != nil, requireTool("qemu-img") != nil else { return }
        let steps = try Self.steps()
        try #require(steps.count >= 10, "the README's tour was not found")
        let cli = try CLI(Scratch())
        let s = cli.scratch
        // Installed under ~/.local, as the README says.
        let data = s.url("home/.local/share/vmtools")
        try s.mkdir("home/.local/share")
        try FileManager.default.copyItem(atPath: Repo.root + "/etc", toPath: data)
        var env = cli.environment
        env["VMTOOLS_DATADIR"] = data
        env["XDG_RUNTIME_DIR"] = s.url("run")
        env["PATH"] = cli.bin + ":/usr/bin:/bin"
        try s.mkdir("run")
        let home = s.url("home")
        var vmPid: String?
        defer {
            if let vmPid, let p = Int32(vmPid), QemuProcess.read(pid: p) != nil { kill(p, SIGKILL) }
        }
        for step in steps {
            // One stream, as on a terminal: messages and results in order.
            let r = try #require(try cli.run("/bin/bash", ["-c", "exec 2>&1; " + step.command], cwd: home, environment: env, within: 120))
            var actual = r.out.replacingOccurrences(of: home, with: "~")
                .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            while actual.last == "" { actual.removeLast() }
            if let started = actual.first(where: { $0.contains("virtual machine started (pid ") }),
               let pid = started.split(separator: "(pid ").last?.dropLast() {
                vmPid = String(pid)
                // Other suites' VMs may run meanwhile: vmps rows of ours only.
                actual = actual.filter { $0.range(of: "^[0-9]+ ", options: .regularExpression) == nil || $0.hasPrefix(pid + " ") }
            }
            var expected = step.expected
            if let banner = expected.firstIndex(of: "[…banner…]") {
                expected.remove(at: banner)
                let next = banner < expected.count ? expected[banner] : nil
                if let k = actual.firstIndex(where: { $0 == next }) { actual.removeSubrange(banner..<k) }
            }
            #expect(r.status == 0, "\(step.command): exit \(r.status)")
            #expect(Self.normalise(actual) == Self.normalise(expected), "\(step.command)\nREADME:\n\(expected.joined(separator: "\n"))\nnow:\n\(actual.joined(separator: "\n"))")
        }
    }
}
