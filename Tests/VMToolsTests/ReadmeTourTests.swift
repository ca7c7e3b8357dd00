import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

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
