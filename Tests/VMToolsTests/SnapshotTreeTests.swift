import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// Named snapshots in every other command (vmsnap(1), vminfo(1), vmcp(1),
/// vmmerge(1), vm.settings(5) `vm_snapshot_auto`): vminfo shows them, the
/// tree commands carry, keep, drop or refuse them as their pages say, and
/// vmmerge and vmup take automatic ones. Stopped VMs made by hand
/// (`SnapshotVM`), states told apart by qemu-io patterns; nothing boots.
@Suite struct SnapshotTreeTests {
    static let a: UInt8 = 0xA1, b: UInt8 = 0xB2, c: UInt8 = 0xC3

    /// A VM in state A with snapshot `s1`, then moved on to state B.
    func snapshotted(_ cli: CLI, _ name: String = "vm", vars: Bool = true, tpm: Bool = true, settings: String = "") throws -> SnapshotVM {
        let vm = try SnapshotVM(cli, name, vars: vars, tpm: tpm, settings: settings)
        try vm.write(Self.a)
        let r = try cli.run("vmsnap", [vm.home, "s1"])
        try #require(r.status == 0, "\(r.err)")
        try vm.write(Self.b)
        return vm
    }

    func run(_ cli: CLI, _ command: String, _ args: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> CLI.Result {
        let r = try cli.run(command, args)
        #expect(r.status == 0, "\(command) \(args): \(r.err)", sourceLocation: sourceLocation)
        return r
    }

    /// Whether every image of the VM at `home` (named as `vm`'s) holds `pattern`.
    func holds(_ vm: SnapshotVM, at home: String, _ pattern: UInt8, labels: [String]? = nil) throws -> Bool {
        try vm.images.filter { labels?.contains($0.label) ?? true }.allSatisfy { image in
            try vm.holds(home + "/" + URL(fileURLWithPath: image.path).lastPathComponent, pattern)
        }
    }

    func tags(_ vm: SnapshotVM, at home: String) throws -> [String: [String]] {
        var out: [String: [String]] = [:]
        for image in vm.images { out[image.label] = try SnapshotVM.tags(home + "/" + URL(fileURLWithPath: image.path).lastPathComponent) }
        return out
    }

    // MARK: vminfo

    @Test(.requires("qemu-img", "qemu-io")) func vminfoShowsSnapshotsAsTextJSONAndATreeMark() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil else { return }
        let cli = try CLI(Scratch())
        let vm = try snapshotted(cli)
        let plain = cli.scratch.url("vm/plain")
        _ = try run(cli, "vmfork", [vm.home, plain])

        let info = try run(cli, "vminfo", ["-i", vm.home])
        let line = try #require(info.outLines.first { $0.hasPrefix("Snapshot: ") }, "\(info.out)")
        #expect(line.wholeMatch(of: /Snapshot: s1 \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d, stopped, tpm\)/) != nil, "\(line)")
        #expect(try run(cli, "vminfo", ["-i", plain]).outLines.allSatisfy { !$0.hasPrefix("Snapshot") })

        let json = try run(cli, "vminfo", ["-j", vm.home, plain])
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]])
        let snaps = try #require(doc.first?["snapshots"] as? [[String: Any]])
        #expect(snaps.count == 1)
        #expect(snaps.first?["name"] as? String == "s1" && snaps.first?["live"] as? Bool == false && snaps.first?["complete"] as? Bool == true)
        #expect(snaps.first?["images"] as? [String] == ["hdd1", "hdd2", "vars"] && snaps.first?["tpm"] as? Bool == true)
        #expect(snaps.first?["vmstate_bytes"] as? Int == 0)
        #expect((snaps.first?["date"] as? String)?.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/) != nil)
        #expect((doc.last?["snapshots"] as? [Any])?.isEmpty == true)

        // The tree marks the VM with snapshots, not its fork.
        let tree = try run(cli, "vminfo", ["-t", plain])
        #expect(tree.outLines.contains { $0.wholeMatch(of: /vm +S/) != nil }, "\(tree.out)")
        #expect(tree.outLines.contains { $0.wholeMatch(of: /└─ plain +\*/) != nil }, "\(tree.out)")
        #expect(tree.out.contains("(*: Current    R: Running    S: Snapshots    ?: Error)"))

        // Both renderings of one report agree.
        let global = try resolver(cli.scratch).loadGlobal()
        let report = VMReport(try resolver(cli.scratch).loadVM(home: vm.home, global: global), parts: [.general, .snapshots], sampled: nil,
                              global: global, environment: cli.environment)
        try VMReportTests().expectAgreement(report)
    }

    /// vminfo -L and vmcp -a say the snapshots are not exported.
    @Test(.requires("qemu-img", "qemu-io")) func exportsNoteTheSnapshotsAreNotExported() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil else { return }
        let cli = try CLI(Scratch())
        let vm = try snapshotted(cli, vars: false, tpm: false)
        let note = "snapshots: not expressible in libvirt: 1 snapshot is not exported (s1); the disks are exported as they are now"
        let libvirt = try run(cli, "vminfo", ["-L", vm.home])
        #expect(libvirt.err.contains(note), "\(libvirt.err)")
        #expect(libvirt.out.contains("<!-- \(note) -->"), "\(libvirt.out)")
        let ova = try run(cli, "vmcp", ["-a", vm.home, cli.scratch.url("vm.ova")])
        #expect(ova.err.contains("NOTICE: snapshots: 1 snapshot is not exported (s1)"), "\(ova.err)")
    }

    // MARK: vmcp, vmfork, vmmv, vmrm

    @Test(.requires("qemu-img", "qemu-io")) func vmcpCopiesSnapshotsWhereItCopiesFilesAndNamesThoseItDrops() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil else { return }
        let cli = try CLI(Scratch())
        let vm = try snapshotted(cli)
        try cli.scratch.write("vm/snapshots/.resume", "s1\n")
        let tpmCopy = "/snapshots/s1/tpm/tpm2-00.permall"

        let copy = cli.scratch.url("copy")
        let r = try run(cli, "vmcp", [vm.home, copy])
        #expect(try tags(vm, at: copy) == ["hdd1": ["s1"], "hdd2": ["s1"], "vars": ["s1"]])
        #expect(textIfPresent(copy + tpmCopy) == "tpm state \(Self.a)\n")
        // The saved RAM would bring back the source's identity: a plain copy starts afresh.
        #expect(!FileManager.default.fileExists(atPath: copy + "/snapshots/.resume"))
        #expect(r.err.contains("NOTICE: \(copy): starts afresh, not from the RAM of snapshot s1"), "\(r.err)")
        _ = try run(cli, "vmsnap", ["-r", copy, "s1"])
        #expect(try holds(vm, at: copy, Self.a) && textIfPresent(copy + "/tpm/tpm2-00.permall") == "tpm state \(Self.a)\n")
        #expect(try vm.state() == Self.b, "the source changed with its copy")

        try cli.scratch.mkdir("lab")
        let keep = cli.scratch.url("lab/keep")
        _ = try run(cli, "vmcp", ["-k", vm.home, keep])
        #expect(textIfPresent(keep + "/snapshots/.resume") == "s1\n")

        // -z converts every disk: no snapshot survives, and the copy holds none, not even in the copied store.
        let z = cli.scratch.url("z")
        let rz = try run(cli, "vmcp", ["-z", vm.home, z])
        #expect(rz.err.contains("NOTICE: \(z): is without the snapshot s1 of \(vm.home): its disks were converted"), "\(rz.err)")
        let zTags = try tags(vm, at: z)
        #expect(zTags.values.allSatisfy { $0.isEmpty }, "\(zTags)")
        #expect(!FileManager.default.fileExists(atPath: z + "/snapshots"))
        #expect(try holds(vm, at: z, Self.b))

        // -a flattens a fork's overlays: its own snapshot is lost the same way.
        let fork = cli.scratch.url("fork")
        _ = try run(cli, "vmfork", [vm.home, fork])
        _ = try run(cli, "vmsnap", [fork, "f1"])
        let alone = cli.scratch.url("alone")
        let ra = try run(cli, "vmcp", ["-a", fork, alone])
        #expect(ra.err.contains("NOTICE: \(alone): is without the snapshot f1 of \(fork)"), "\(ra.err)")
        let aloneTags = try tags(vm, at: alone)
        #expect(aloneTags.values.allSatisfy { $0.isEmpty }, "\(aloneTags)")
        #expect(try holds(vm, at: alone, Self.b))

        // -r takes snapshots/ as the VM's, not as a tree directory to recreate empty.
        _ = try run(cli, "vmcp", ["-r", cli.scratch.url("lab"), cli.scratch.url("lab2")])
        #expect(textIfPresent(cli.scratch.url("lab2/keep") + tpmCopy) == "tpm state \(Self.a)\n")
        #expect(try tags(vm, at: cli.scratch.url("lab2/keep"))["hdd1"] == ["s1"])
    }

    @Test(.requires("qemu-img", "qemu-io")) func aForkRestsOnTheCurrentStateWithNoSnapshotsAndPinsTheParents() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil else { return }
        let cli = try CLI(Scratch())
        let vm = try snapshotted(cli)
        let fork = cli.scratch.url("fork")
        _ = try run(cli, "vmfork", [vm.home, fork])
        let forkTags = try tags(vm, at: fork)
        #expect(forkTags.values.allSatisfy { $0.isEmpty }, "\(forkTags)")
        #expect(try holds(vm, at: fork, Self.b))
        let list = try run(cli, "vmsnap", ["-l", "-j", fork])
        #expect(list.out.trimmingCharacters(in: .whitespacesAndNewlines) == "[]", "\(list.out)")
        // The fork's disks rest on the parent's: it cannot go back now.
        for flag in ["-r", "-d"] {
            let refused = try cli.run("vmsnap", [flag, vm.home, "s1"])
            #expect(refused.status == 1 && refused.err.contains(fork), "\(refused.err)")
        }
        #expect(try vm.state() == Self.b)
    }

    @Test(.requires("qemu-img", "qemu-io")) func snapshotsMoveWithTheHomeAndStillRevert() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil else { return }
        let cli = try CLI(Scratch())
        let vm = try snapshotted(cli)
        // A fork outside the home whose own snapshot must survive its base's move.
        let fork = cli.scratch.url("fork")
        _ = try run(cli, "vmfork", [vm.home, fork])
        let forkDisk = fork + "/hdd1.qcow2"
        #expect(try Subprocess(SnapshotVM.qemuIO, ["-c", "write -P \(Self.c) 0 64k", forkDisk]).run().status == 0)
        _ = try run(cli, "vmsnap", [fork, "f1"])
        #expect(try Subprocess(SnapshotVM.qemuIO, ["-c", "write -P \(Self.a) 0 64k", forkDisk]).run().status == 0)

        let moved = cli.scratch.url("moved")
        _ = try run(cli, "vmmv", [vm.home, moved])
        #expect(try tags(vm, at: moved) == ["hdd1": ["s1"], "hdd2": ["s1"], "vars": ["s1"]])
        _ = try run(cli, "vmsnap", ["-r", fork, "f1"])
        #expect(try vm.holds(forkDisk, Self.c))
        #expect(try vm.holds(fork + "/hdd2.qcow2", Self.b), "the fork no longer reads its moved base")
        _ = try run(cli, "vmrm", ["-y", fork])
        _ = try run(cli, "vmsnap", ["-r", moved, "s1"])
        #expect(try holds(vm, at: moved, Self.a) && textIfPresent(moved + "/tpm/tpm2-00.permall") == "tpm state \(Self.a)\n")
    }

    @Test(.requires("qemu-img", "qemu-io")) func vmrmSaysHowManySnapshotsGoWithTheVM() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil else { return }
        let cli = try CLI(Scratch())
        let vm = try snapshotted(cli)
        _ = try run(cli, "vmsnap", [vm.home, "s2"])
        let kept = try snapshotted(cli, "kept")
        let k = try run(cli, "vmrm", ["-k", "-y", kept.home])
        #expect(k.err.contains("INFO: \(kept.home): virtual machine deleted (its snapshot stays in the disk images kept)"), "\(k.err)")
        let r = try run(cli, "vmrm", ["-y", vm.home])
        #expect(r.err.contains("INFO: \(vm.home): virtual machine deleted, with its 2 snapshots"), "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: vm.home))
    }

    // MARK: vmmerge

    @Test(.requires("qemu-img", "qemu-io"), arguments: [[], ["-s"]])
    func mergingIntoAParentKeepsItsSnapshots(_ flags: [String]) throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil else { return }
        let cli = try CLI(Scratch())
        let vm = try snapshotted(cli)
        let child = cli.scratch.url("vm/child")
        _ = try run(cli, "vmfork", [vm.home, child])
        for image in vm.images {
            let path = child + "/" + URL(fileURLWithPath: image.path).lastPathComponent
            #expect(try Subprocess(SnapshotVM.qemuIO, ["-c", "write -P \(Self.c) 0 64k", path]).run().status == 0)
        }
        _ = try run(cli, "vmmerge", flags + [child])
        #expect(!FileManager.default.fileExists(atPath: child))
        // The parent has the child's disks and variables, and its snapshot still covers all of them.
        #expect(try holds(vm, at: vm.home, Self.c))
        #expect(try vm.holding("s1") == ["hdd1", "hdd2", "vars"])
        _ = try run(cli, "vmsnap", ["-r", vm.home, "s1"])
        #expect(try vm.state() == Self.a)
        #expect(try Subprocess(SnapshotVM.qemuImg, ["check", "-q", vm.home + "/hdd1.qcow2"]).run().status == 0)
    }

    @Test(.requires("qemu-img", "qemu-io")) func vmmergeRefusesWhatWouldLoseSnapshots() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil else { return }
        let cli = try CLI(Scratch())
        let vm = try snapshotted(cli)
        let child = try SnapshotVM(cli, "vm/child", vars: false, tpm: false, settings: "parent \(vm.home)\n")
        try cli.scratch.write("vm/childs.lst", child.home + "\n")
        try child.write(Self.c)
        _ = try run(cli, "vmsnap", [child.home, "c1"])
        let before = (vm.checksums(), child.checksums())

        let p = try cli.run("vmmerge", ["-p", child.home])
        #expect(p.status == 1)
        #expect(p.err.contains("ERROR: \(child.home): has snapshots (c1), which merging into its parent would fold away with its disks; delete them first with vmsnap -d"), "\(p.err)")
        let c = try cli.run("vmmerge", ["-c", vm.home])
        #expect(c.status == 1)
        #expect(c.err.contains("ERROR: \(vm.home): has snapshots (s1), which merging into the children cannot keep"), "\(c.err)")
        #expect(child.checksums() == before.1)
        // Nor may a child have any: its overlay would take in the merged VM's disk.
        let other = try SnapshotVM(cli, "other", vars: false, tpm: false)
        let kid = try SnapshotVM(cli, "other/kid", vars: false, tpm: false, settings: "parent \(other.home)\n")
        try cli.scratch.write("other/childs.lst", kid.home + "\n")
        _ = try run(cli, "vmsnap", [kid.home, "k1"])
        let k = try cli.run("vmmerge", ["-c", other.home])
        #expect(k.status == 1)
        #expect(k.err.contains("ERROR: \(kid.home): has snapshots (k1), which merging into the children cannot keep"), "\(k.err)")
        #expect(FileManager.default.fileExists(atPath: other.home + "/vm.settings"))
        #expect(vm.checksums() == before.0)
        #expect(vm.backups().isEmpty && child.backups().isEmpty)
    }

    // MARK: vm_snapshot_auto

    @Test(.requires("qemu-img", "qemu-io")) func vmmergeSnapshotsTheParentFirstAndTakesItBackWhenUndone() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil else { return }
        let cli = try CLI(Scratch())
        let vm = try SnapshotVM(cli, "vm", settings: "vm_snapshot_auto=merge\n")
        try vm.write(Self.b)
        let child = cli.scratch.url("vm/child")
        _ = try run(cli, "vmfork", ["-k", vm.home, child])
        for image in vm.images {
            let path = child + "/" + URL(fileURLWithPath: image.path).lastPathComponent
            #expect(try Subprocess(SnapshotVM.qemuIO, ["-c", "write -P \(Self.c) 0 64k", path]).run().status == 0)
        }
        // Killed at each journaled step: vmfix -b leaves the tree as it was, without the snapshot.
        var step = 1
        while step < 40 {
            // Safe mode: the commits are undone too.
            let r = try cli.run("vmmerge", ["-s", child], env: ["VMTOOLS_FAULT_KILL_AT_STEP": String(step)])
            if r.status == 0 { break }
            _ = try cli.run("vmfix", ["-b", vm.home])
            #expect(FileManager.default.fileExists(atPath: child + "/vm.settings"), "step \(step)")
            let left = try tags(vm, at: vm.home)
            #expect(left.values.allSatisfy { $0.isEmpty }, "step \(step): \(left)")
            #expect(try vm.state() == Self.b, "step \(step)")
            step += 1
        }
        #expect(step > 3 && step < 40, "the merge never completed or had no steps to kill")
        let list = try run(cli, "vmsnap", ["-l", "-j", vm.home])
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(list.out.utf8)) as? [[String: Any]])
        let name = try #require(doc.first?["name"] as? String)
        #expect(name.wholeMatch(of: /auto-merge-\d{8}-\d{6}/) != nil && doc.count == 1 && doc.first?["complete"] as? Bool == true, "\(doc)")
        #expect(try holds(vm, at: vm.home, Self.c))
        _ = try run(cli, "vmsnap", ["-r", vm.home, name])
        #expect(try vm.state() == Self.b)

        // Into the children there is nothing safe to snapshot: a notice says so.
        let other = try SnapshotVM(cli, "other", vars: false, tpm: false, settings: "vm_snapshot_auto=merge\n")
        _ = try run(cli, "vmfork", [other.home, cli.scratch.url("other/kid")])
        let c = try run(cli, "vmmerge", ["-c", other.home])
        #expect(c.err.contains("NOTICE: \(other.home): no snapshot taken (vm_snapshot_auto): merging into the children rewrites their disks"), "\(c.err)")
    }

    @Test(.requires("qemu-img", "qemu-io")) func vmupSnapshotsBeforeGrowingADisk() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil else { return }
        let cli = try CLI(Scratch())
        let vm = try SnapshotVM(cli, "vm", vars: false, tpm: false, settings: "vm_snapshot_auto=grow\nvm_storage_hdd1_size=8M\nvm_display_type=none\n")
        try vm.write(Self.a)
        let n = try run(cli, "vmup", ["-n", vm.home])
        #expect(n.err.contains("NOTICE: would take a snapshot auto-grow-YYYYMMDD-HHMMSS of the VM before growing its disks (vm_snapshot_auto)"), "\(n.err)")
        #expect(try vm.images.allSatisfy { try SnapshotVM.tags($0.path).isEmpty }, "vmup -n took a snapshot")
        // QEMU is not found, after the disks were prepared: nothing boots.
        let up = try cli.run("vmup", ["-o", "cfg_qemu_cmdprefix=\(cli.scratch.url("none/qemu-system-"))", vm.home])
        #expect(up.status == 1 && up.err.contains("not found"), "\(up.err)")
        let took = try #require(up.errLines.first { $0.contains("took snapshot auto-grow-") }, "\(up.err)")
        #expect(up.err.contains("NOTICE: grew \(vm.home)/hdd1.qcow2 from 4M to 8M"), "\(up.err)")
        let name = String(try #require(took.firstMatch(of: /auto-grow-\d{8}-\d{6}/)).output)
        #expect(try vm.holding(name) == ["hdd1", "hdd2"])
        #expect(ImageFormat.virtualSize(vm.home + "/hdd1.qcow2") == 8 << 20)
        // The grown disk's old snapshot still reverts, to its old size too.
        try vm.write(Self.b)
        _ = try run(cli, "vmsnap", ["-r", vm.home, name])
        #expect(try vm.state() == Self.a)
        #expect(ImageFormat.virtualSize(vm.home + "/hdd1.qcow2") == 4 << 20)
        // Nothing to grow, no snapshot.
        try cli.scratch.write("vm/vm.settings", try cli.scratch.read("vm/vm.settings").replacingOccurrences(of: "hdd1_size=8M", with: "hdd1_size=4M"))
        #expect(!(try run(cli, "vmup", ["-n", vm.home])).err.contains("would take a snapshot"))
    }
}
