import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// Crash safety of `vmsnap` on a stopped VM (vmsnap(1), CRASH SAFETY): it
/// is killed right after each step it journals (`VMTOOLS_FAULT_KILL_AT_STEP`,
/// as in FaultInjectionTests), then `vmfix -b` replays the journal. A
/// create is undone (no image keeps the snapshot), a revert is completed
/// once it has begun (every image and the TPM go back together), a delete
/// is completed (no image keeps it), `-f` leaves no snapshot of that name;
/// no backup directory is left and the listing shows nothing incomplete.
/// The VM has three images (two disks and the variable store) and a TPM;
/// qemu-io patterns tell its states apart (SnapshotVM).
@Suite(.serialized) struct SnapshotCrashTests {
    /// The VM after `prepare`: state A saved as `snap`, then state B.
    struct Lab {
        let cli: CLI
        let vm: SnapshotVM
        let pristine: String

        init() throws {
            cli = try CLI(Scratch())
            vm = try SnapshotVM(cli, "vm")
            try vm.write(0xA1)
            let r = try cli.run("vmsnap", [vm.home, "snap"])
            try #require(r.status == 0, "\(r.err)")
            try vm.write(0xB2)
            pristine = cli.scratch.url("pristine")
            try Self.run("/bin/cp", ["-a", vm.home, pristine])
        }

        func reset() throws {
            try Self.run("/bin/rm", ["-rf", vm.home])
            try Self.run("/bin/cp", ["-a", pristine, vm.home])
        }

        static func run(_ exe: String, _ args: [String]) throws {
            let r = try Subprocess(exe, args).run()
            try #require(r.status == 0, "\(exe) \(args): \(r.stderrText)")
        }

        /// Runs `args` killed at step 1, 2, … until it runs through; after
        /// each kill `vmfix -b` repairs and `check` judges the VM (with the
        /// step). Returns how many steps were journaled.
        @discardableResult
        func killAtEveryStep(_ args: [String], _ check: (Int) throws -> Void,
                             sourceLocation: SourceLocation = #_sourceLocation) throws -> Int {
            var step = 1
            while true {
                try reset()
                let r = try cli.run("vmsnap", args, env: ["VMTOOLS_FAULT_KILL_AT_STEP": "\(step)"])
                guard r.status == 9 else {
                    #expect(r.status == 0, "vmsnap \(args) at step \(step): \(r.err)", sourceLocation: sourceLocation)
                    break
                }
                let what = "vmsnap \(args.joined(separator: " ")) killed at step \(step)"
                #expect(vm.backups().count == 1, "\(what): \(vm.backups())", sourceLocation: sourceLocation)
                let fix = try cli.run("vmfix", ["-b", vm.home])
                #expect(fix.status == 3 && fix.err.contains("SOLVED"), "\(what): vmfix -b: \(fix.status)\n\(fix.err)", sourceLocation: sourceLocation)
                #expect(vm.backups().isEmpty, "\(what): \(vm.backups())", sourceLocation: sourceLocation)
                let again = try cli.run("vmfix", ["-bn", vm.home])
                #expect(again.status == 0, "\(what): vmfix -bn after the repair: \(again.err)", sourceLocation: sourceLocation)
                let list = try cli.run("vmsnap", ["-l", vm.home])
                #expect(list.status == 0 && !list.out.contains("incomplete"), "\(what): \(list.out)\(list.err)", sourceLocation: sourceLocation)
                try check(step)
                step += 1
                try #require(step < 100, "vmsnap \(args) never finished")
            }
            return step - 1
        }

        /// The TPM copy of `name` is there (with what was saved) or not.
        func tpmCopy(_ name: String) -> String? {
            let path = vm.home + "/snapshots/\(name)/tpm/tpm2-00.permall"
            return FileManager.default.fileExists(atPath: path) ? textIfPresent(path) : nil
        }
    }

    @Test(.requires("qemu-img", "qemu-io")) func anInterruptedCreateIsUndone() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil else { return }
        let lab = try Lab()
        let steps = try lab.killAtEveryStep([lab.vm.home, "new"]) { (step: Int) throws in
            #expect(try lab.vm.holding("new").isEmpty, "step \(step): an image keeps the snapshot")
            #expect(!FileManager.default.fileExists(atPath: lab.vm.home + "/snapshots/new"), "step \(step)")
            #expect(try lab.vm.holding("snap") == ["hdd1", "hdd2", "vars"] && lab.tpmCopy("snap") == "tpm state 161\n", "step \(step)")
            #expect(try lab.vm.state() == 0xB2, "step \(step): the VM's data changed")
        }
        // snapshots/ and snapshots/new, the TPM copy, then one per image.
        #expect(steps >= 5, "only \(steps) steps journaled")
        // Run through, it is on every image.
        #expect(try lab.vm.holding("new") == ["hdd1", "hdd2", "vars"])
        #expect(lab.tpmCopy("new") == "tpm state 178\n")
    }

    @Test(.requires("qemu-img", "qemu-io")) func anInterruptedRevertIsFinishedOnceBegun() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil else { return }
        let lab = try Lab()
        var reverted: [Int] = []
        let steps = try lab.killAtEveryStep(["-r", lab.vm.home, "snap"]) { (step: Int) throws in
            // All images and the TPM in one state: the old one or the snapshot's.
            let state = try lab.vm.state()
            #expect(state == 0xA1 || state == 0xB2, "step \(step): images and TPM disagree (\(String(describing: state)))")
            if state == 0xA1 { reverted.append(step) }
            #expect(try lab.vm.holding("snap") == ["hdd1", "hdd2", "vars"], "step \(step): the snapshot itself is kept")
        }
        #expect(steps >= 4, "only \(steps) steps journaled")
        // Once the first image is journaled for the revert, every later kill ends reverted.
        let first = try #require(reverted.first, "no killed revert was finished by vmfix")
        #expect(reverted == Array(first...steps), "\(reverted) of \(steps) steps")
        #expect(first <= 2, "the revert is finished from step \(first) on only")
        #expect(try lab.vm.state() == 0xA1)
    }

    @Test(.requires("qemu-img", "qemu-io")) func anInterruptedDeleteIsFinished() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil else { return }
        let lab = try Lab()
        let steps = try lab.killAtEveryStep(["-d", lab.vm.home, "snap"]) { (step: Int) throws in
            #expect(try lab.vm.holding("snap").isEmpty, "step \(step): an image keeps the snapshot")
            #expect(lab.tpmCopy("snap") == nil, "step \(step): the TPM copy is left")
            #expect(try lab.vm.state() == 0xB2, "step \(step): the VM's data changed")
        }
        #expect(steps >= 3, "only \(steps) steps journaled")
        #expect(try lab.vm.holding("snap").isEmpty)
    }

    @Test(.requires("qemu-img", "qemu-io")) func anInterruptedReplaceLeavesNoSnapshotOfThatName() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil else { return }
        let lab = try Lab()
        let steps = try lab.killAtEveryStep(["-f", lab.vm.home, "snap"]) { (step: Int) throws in
            #expect(try lab.vm.holding("snap").isEmpty, "step \(step): an image keeps a snapshot 'snap'")
            #expect(lab.tpmCopy("snap") == nil, "step \(step)")
            #expect(try lab.vm.state() == 0xB2, "step \(step): the VM's data changed")
        }
        #expect(steps >= 4, "only \(steps) steps journaled")
        // Run through, it holds the new state: a revert after a change gives B back.
        try lab.vm.write(0xC3)
        #expect(try lab.cli.run("vmsnap", ["-r", lab.vm.home, "snap"]).status == 0)
        #expect(try lab.vm.state() == 0xB2)
    }
}
