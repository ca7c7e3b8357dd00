import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// What `vmsnap` refuses (vmsnap(1), NAMES, FORKS AND TREES, EXIT STATUS):
/// a disk that cannot hold a snapshot, a revert or delete under a fork, a
/// name that exists, a name QEMU's tags or `snapshots/` cannot hold, and
/// wrong usage. Each refusal is one line naming the VM, exit 1 (2 for
/// usage), and every file of the VM is as it was (checksums before and after).
@Suite(.serialized) struct SnapshotRefusalTests {
    /// Runs vmsnap expecting a refusal: `status`, one line on stderr holding
    /// every one of `words`, nothing on stdout, no file of the VM changed.
    func refused(_ vm: SnapshotVM, _ args: [String], status: Int32 = 1, saying words: [String],
                 sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = vm.checksums()
        let r = try vm.cli.run("vmsnap", args)
        let what = "vmsnap \(args.joined(separator: " "))"
        #expect(r.status == status, "\(what): \(r.status)\n\(r.err)", sourceLocation: sourceLocation)
        // A usage error adds where help is.
        let lines = status == 2 ? ["Try 'vmsnap -h' for help."] : []
        #expect(Array(r.errLines.dropFirst()) == lines, "\(what): \(r.err)", sourceLocation: sourceLocation)
        #expect(r.errLines.first?.hasPrefix("vmsnap: ERROR: ") == true, "\(what): \(r.err)", sourceLocation: sourceLocation)
        for w in words { #expect(r.err.contains(w), "\(what): '\(w)' not in \(r.err)", sourceLocation: sourceLocation) }
        #expect(r.out.isEmpty, "\(what): \(r.out)", sourceLocation: sourceLocation)
        #expect(vm.checksums() == before, "\(what) changed the VM", sourceLocation: sourceLocation)
        #expect(vm.backups().isEmpty, "\(what): \(vm.backups())", sourceLocation: sourceLocation)
    }

    @Test(.requires("qemu-img", "qemu-io")) func aDiskThatCannotHoldASnapshotIsRefusedNamingIt() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil else { return }
        let cli = try CLI(Scratch())
        // A raw hdd3 beside the two qcow2 disks: nothing is taken, not even on them.
        let raw = try SnapshotVM(cli, "raw", settings: "vm_storage_hdd3_enable=yes\nvm_storage_hdd3_backend=hdd3.raw\n")
        let r = try Subprocess(SnapshotVM.qemuImg, ["create", "-q", "-f", "raw", raw.home + "/hdd3.raw", "1M"]).run()
        try #require(r.status == 0)
        try refused(raw, [raw.home, "before"], saying: [raw.home, "hdd3"])
        #expect(try raw.holding("before").isEmpty)
        // A disk in snapshot mode (snap:) and a read-only one (ro:) cannot hold one either,
        // even when they are disabled: a snapshot covers every hard disk.
        for prefix in ["snap", "ro"] {
            let vm = try SnapshotVM(cli, prefix, settings: "vm_storage_hdd3_enable=no\nvm_storage_hdd3_backend=\(prefix):hdd1.qcow2\n")
            try refused(vm, [vm.home, "before"], saying: [vm.home, "hdd3"])
            #expect(try vm.holding("before").isEmpty)
        }
        // Listing is no change: it works on the raw VM and shows nothing.
        let l = try cli.run("vmsnap", ["-l", raw.home])
        #expect(l.status == 0 && l.out.isEmpty, "\(l.out)\(l.err)")
    }

    @Test(.requires("qemu-img", "qemu-io")) func theBaseOfAForkIsNotRevertedOrDeleted() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil else { return }
        let cli = try CLI(Scratch())
        let base = try SnapshotVM(cli, "base", vars: false, tpm: false)
        try base.write(0xA1)
        let made = try cli.run("vmsnap", [base.home, "before"])
        try #require(made.status == 0, "\(made.err)")
        let fork = try cli.run("vmfork", ["-q", base.home, cli.scratch.url("fork")])
        try #require(fork.status == 0, "\(fork.err)")
        // Creating one is allowed: the disks the fork rests on keep their contents.
        let more = try cli.run("vmsnap", [base.home, "after-fork"])
        #expect(more.status == 0, "\(more.err)")
        #expect(try base.holding("after-fork") == ["hdd1", "hdd2"])
        for flag in ["-r", "-d"] {
            try refused(base, [flag, base.home, "before"], saying: [base.home, cli.scratch.url("fork")])
        }
        #expect(try base.holding("before") == ["hdd1", "hdd2"])
        // Once the fork is gone, both work.
        let rm = try cli.run("vmrm", ["-y", cli.scratch.url("fork")])
        try #require(rm.status == 0, "\(rm.err)")
        #expect(try cli.run("vmsnap", ["-r", base.home, "before"]).status == 0)
        #expect(try cli.run("vmsnap", ["-d", base.home, "before"]).status == 0)
        #expect(try base.holding("before").isEmpty)
    }

    @Test(.requires("qemu-img", "qemu-io")) func anExistingNameIsRefusedAndDashFReplacesIt() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil else { return }
        let cli = try CLI(Scratch())
        let vm = try SnapshotVM(cli, "dup")
        try vm.write(0xA1)
        let first = try cli.run("vmsnap", [vm.home, "same"])
        try #require(first.status == 0, "\(first.err)")
        try vm.write(0xB2)
        try refused(vm, [vm.home, "same"], saying: [vm.home, "same", "-f"])
        // -f replaces it: the snapshot now holds the second state.
        let replaced = try cli.run("vmsnap", ["-f", vm.home, "same"])
        #expect(replaced.status == 0, "\(replaced.err)")
        #expect(try vm.holding("same") == ["hdd1", "hdd2", "vars"])
        #expect(try SnapshotVM.tags(vm.home + "/hdd1.qcow2") == ["same"], "one snapshot of that name, not two")
        try vm.write(0xC3)
        let back = try cli.run("vmsnap", ["-r", vm.home, "same"])
        #expect(back.status == 0, "\(back.err)")
        #expect(try vm.state() == 0xB2)
        // -r and -d of a name that does not exist.
        for flag in ["-r", "-d"] {
            try refused(vm, [flag, vm.home, "nothing"], saying: [vm.home, "nothing"])
        }
    }

    @Test(.requires("qemu-img", "qemu-io")) func badNamesAreRefused() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil else { return }
        let cli = try CLI(Scratch())
        let vm = try SnapshotVM(cli, "names")
        // Digits alone (qemu-img would take them for an id), a leading dot or
        // dash, a slash, a blank, a control character, a non-ASCII letter,
        // too long, empty.
        let bad = ["1", "0042", ".hidden", "-x", "a/b", "..", "a b", "tab\there", "café", String(repeating: "n", count: 101), ""]
        for name in bad {
            try refused(vm, ["--", vm.home, name], saying: [vm.home])
            try refused(vm, ["-r", "--", vm.home, name], saying: [vm.home])
        }
        // The longest name and every allowed character are fine.
        for good in [String(repeating: "n", count: 100), "A-z_0.9+1", "v1"] {
            let r = try cli.run("vmsnap", [vm.home, good])
            #expect(r.status == 0, "\(good): \(r.err)")
            #expect(try vm.holding(good) == ["hdd1", "hdd2", "vars"], "\(good)")
        }
    }

    @Test(.requires("qemu-img")) func wrongUsageIsExitTwoAndChangesNothing() throws {
        guard requireTool("qemu-img") != nil else { return }
        let cli = try CLI(Scratch())
        let vm = try SnapshotVM(cli, "usage")
        for args in [[], [vm.home], ["-l", "-r", vm.home], ["-r", "-d", vm.home, "x"], ["-j", vm.home, "x"], ["-f", "-r", vm.home, "x"],
                     ["-f", "-l", vm.home], ["-x", vm.home, "x"]] {
            try refused(vm, args, status: 2, saying: [])
        }
        // A home that is none: the operand is named, exit 1.
        try refused(vm, [cli.scratch.url("nowhere"), "x"], saying: [cli.scratch.url("nowhere")])
    }
}
