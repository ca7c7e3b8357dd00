import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// Crash safety (issue 4): vmcp, vmfork, vmmv, vmrm and vmmerge are killed
/// with SIGKILL at every journaled step (`VMTOOLS_FAULT_KILL_AT_STEP`) and
/// at random moments in between, more than 100 trials in all. After each,
/// `vmfix -rA` must bring the tree back to a consistent state (`vmfix -ran`
/// finds nothing) that is the old layout or the new one, with no leftovers,
/// and every disk must still hold exactly the data of a VM it came from.
/// The random moments come from a seed the test prints: run it again with
/// `VMTOOLS_TEST_SEED` set to that seed to replay them.
@Suite(.serialized) struct FaultInjectionTests {
    /// SplitMix64: the same seed gives the same moments, run after run.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// `VMTOOLS_TEST_SEED` when set (a decimal number, else an error), a fresh seed otherwise.
    static func seed(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> UInt64 {
        guard let text = environment["VMTOOLS_TEST_SEED"] else { return UInt64.random(in: .min ... .max) }
        guard let seed = UInt64(text) else {
            throw VMToolsError(.usage, "VMTOOLS_TEST_SEED", "not a seed: '\(text)' (a decimal number, as the test printed it)")
        }
        return seed
    }

    @Test func theSeedReplaysTheSameMoments() throws {
        let seed = try Self.seed(["VMTOOLS_TEST_SEED": "12345"])
        #expect(seed == 12345)
        var a = SeededGenerator(seed: seed), b = SeededGenerator(seed: seed), c = SeededGenerator(seed: seed + 1)
        let first = (0..<8).map { _ in Double.random(in: 0...1, using: &a) }
        #expect(first == (0..<8).map { _ in Double.random(in: 0...1, using: &b) })
        #expect(first != (0..<8).map { _ in Double.random(in: 0...1, using: &c) })
        #expect(Set(first).count == 8)
        #expect(expectError { _ = try Self.seed(["VMTOOLS_TEST_SEED": "0x1f"]) }?.subject == "VMTOOLS_TEST_SEED")
    }

    struct Operation: Sendable {
        var command: String
        var args: @Sendable (Tree) -> [String]
        /// Data that must survive whatever happens.
        var keeps: Set<String>
    }

    static let operations: [Operation] = [
        Operation(command: "vmcp", args: { ["-R", "-y", $0.path("R"), $0.root + "/copy"] }, keeps: ["R", "B", "C", "D"]),
        Operation(command: "vmfork", args: { [$0.path("B"), $0.root + "/fork"] }, keeps: ["R", "B", "C", "D"]),
        Operation(command: "vmcp", args: { ["-a", $0.path("C"), $0.root + "/alone"] }, keeps: ["R", "B", "C", "D"]),
        Operation(command: "vmmv", args: { [$0.path("B"), $0.root + "/moved"] }, keeps: ["R", "B", "C", "D"]),
        Operation(command: "vmrm", args: { ["-r", "-y", $0.path("B")] }, keeps: ["R", "D"]),
        Operation(command: "vmmerge", args: { ["-s", "-c", $0.path("B")] }, keeps: ["R", "C", "D"]),
        Operation(command: "vmmerge", args: { ["-s", $0.path("C")] }, keeps: ["R", "C", "D"]),
    ]

    @Test(.requires("qemu-img", "qemu-io")) func killedAnywhereTheTreeIsRestoredOrFinished() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil else { return }
        let cli = try CLI(Scratch())
        let tree = try Tree(cli)
        let pristine = cli.scratch.url("pristine")
        try run("/bin/cp", ["-a", "--sparse=always", tree.root, pristine])
        func reset() throws {
            try run("/bin/rm", ["-rf", tree.root])
            try run("/bin/cp", ["-a", "--sparse=always", pristine, tree.root])
        }
        let before = tree.listing()
        var trials = 0
        var outcomes: [String: Int] = ["old": 0, "new": 0]
        let seed = try Self.seed()
        print("FaultInjectionTests: random seed \(seed); VMTOOLS_TEST_SEED=\(seed) replays these moments")
        var random = SeededGenerator(seed: seed)

        for op in Self.operations {
            // A clean run gives the new layout and the time the command takes.
            try reset()
            let start = Date()
            let clean = try cli.run(op.command, op.args(tree))
            let duration = Date().timeIntervalSince(start)
            try #require(clean.status == 0, "\(op.command): \(clean.err)")
            let after = tree.listing()

            func check(_ trial: String) throws {
                let what = "\(trial) [VMTOOLS_TEST_SEED=\(seed)]"
                trials += 1
                // vmfix says 3 exactly when it finds something to repair, and
                // repairs what it reports: the report and the repair agree.
                let report = try cli.run("vmfix", ["-ran", tree.root])
                #expect(report.status == 0 || report.status == 3, "\(what): vmfix -ran: \(report.status)\n\(report.err)")
                let fix = try cli.run("vmfix", ["-rA", tree.root])
                #expect(fix.status == report.status, "\(what): vmfix -rA: \(fix.status) after -ran said \(report.status)\n\(fix.err)")
                let again = try cli.run("vmfix", ["-ran", tree.root])
                #expect(again.status == 0, "\(what): not consistent after vmfix:\n\(again.err)")
                #expect(tree.leftovers().isEmpty, "\(what): \(tree.leftovers())")
                let layout = tree.listing()
                if layout == before { outcomes["old"]! += 1 } else if layout == after { outcomes["new"]! += 1 } else {
                    Issue.record("\(what): neither the old layout nor the new one:\n\(layout)")
                }
                var found: Set<String> = []
                for home in tree.homes() {
                    let value = try tree.settings(home).value("vm_storage_hdd1_backend") ?? ""
                    let image = StorageBackend(value).location
                    guard !image.isEmpty else { continue }  // a fork in snapshot mode
                    let data = tree.content(of: image)
                    #expect(data != nil, "\(what): \(image) holds no known data")
                    if let data { found.insert(data) }
                }
                #expect(op.keeps.isSubset(of: found), "\(what): lost \(op.keeps.subtracting(found).sorted())")
            }

            // Killed right after journaling step 1, 2, … until it runs through.
            var step = 1
            while true {
                try reset()
                let r = try cli.run(op.command, op.args(tree), env: ["VMTOOLS_FAULT_KILL_AT_STEP": "\(step)"])
                if r.status != 9 {
                    #expect(r.status == 0, "\(op.command) at step \(step): \(r.err)")
                    break
                }
                try check("\(op.command) killed at step \(step)")
                step += 1
                try #require(step < 200, "\(op.command) never finished")
            }
            #expect(step > 2, "\(op.command) journaled only \(step - 1) steps")
            // And at random moments, inside qemu-img runs and copies too.
            for i in 0..<8 {
                try reset()
                // A fraction of the clean run, so a replay hits the same point of the work.
                let delay = Double.random(in: 0...1, using: &random) * duration
                // In a process group of its own, so the kill takes every
                // qemu-img it started too, as a crash of the session would.
                let pid = try spawnInOwnGroup(cli.bin + "/" + op.command, op.args(tree), cli.environment)
                // The fault's timing, not a synchronisation: any moment is a valid test.
                usleep(UInt32(delay * 1_000_000))
                kill(-pid, SIGKILL)
                var status: Int32 = 0
                waitpid(pid, &status, 0)
                #expect(waitUntil(10) { kill(-pid, 0) != 0 }, "a process of the killed group lives on")
                try check("\(op.command) killed after \(Int(delay * 1000)) ms (trial \(i))")
            }
        }
        #expect(trials >= 100, "only \(trials) trials")
        #expect(outcomes["old"]! > 0 && outcomes["new"]! > 0, "\(outcomes)")
    }

    /// posix_spawn with a new process group (pgid = pid); output discarded.
    func spawnInOwnGroup(_ exe: String, _ args: [String], _ env: [String: String]) throws -> pid_t {
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attr, 0)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv = ([exe] + args).map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, exe, &actions, &attr, argv, envp)
        try #require(rc == 0, "posix_spawn \(exe): \(rc)")
        return pid
    }

    func run(_ exe: String, _ args: [String]) throws {
        let r = try Subprocess(exe, args).run()
        try #require(r.status == 0, "\(exe) \(args): \(r.stderrText)")
    }
}
