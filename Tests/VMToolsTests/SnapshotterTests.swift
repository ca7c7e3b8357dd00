import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// `Snapshotter` on stopped VMs (vmsnap(1)): every qcow2 disk, the UEFI
/// variable store and `tpm/` together; refusals change nothing; the
/// journal of a revert or delete that could not finish is completed by
/// `vmfix -b`. No guest boots: qemu-io writes and reads the images.
@Suite struct SnapshotterTests {
    /// A stopped VM: two qcow2 disks, a UEFI variable store, a TPM state
    /// with a secret file, a sub-directory and a planted link.
    final class Lab {
        let s = Scratch()
        let home: String
        let global: GlobalConfig
        let environment: [String: String]
        let log: String
        let logFD: Int32
        static let images = ["disk1.qcow2", "disk2.qcow2", VMFileNames.firmwareVars]

        init(extraSettings: String = "") throws {
            home = s.url("vm")
            try s.write("vm/vm.settings", "vm_name=vm\nvm_storage_hdd1_backend=disk1.qcow2\nvm_storage_hdd2_backend=\(s.url("vm/disk2.qcow2"))\n"
                        + "vm_storage_hdd2_enable=no\n" + extraSettings)
            for (image, size) in zip(Self.images, ["8M", "8M", "1M"]) {
                try Self.qemuImg(["create", "-q", "-f", "qcow2", home + "/" + image, size])
            }
            try s.write("vm/tpm/tpm2-00.permall", "state A")
            chmod(s.url("vm/tpm/tpm2-00.permall"), 0o600)
            try s.write("vm/tpm/sub/nv", "nv A")
            symlink("/etc/hostname", s.url("vm/tpm/planted"))
            // Private, as a start makes them (vmfix -s checks it).
            for (rel, mode) in [("vm/tpm", 0o700), ("vm/tpm/sub", 0o700), ("vm/tpm/sub/nv", 0o600), ("vm/" + VMFileNames.firmwareVars, 0o600)] {
                chmod(s.url(rel), mode_t(mode))
            }
            global = try resolver(s).loadGlobal()
            environment = ["PATH": "/usr/bin:/bin", "HOME": s.url("home")]
            log = s.url("log")
            logFD = open(log, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        }

        deinit { close(logFD) }

        func snapshotter() throws -> Snapshotter {
            let vm = try resolver(s).loadVM(home: home, global: global)
            let fd = logFD
            return Snapshotter(vm: vm, global: global, environment: environment,
                               console: Console(command: "vmsnap", out: OutputStream(fd: fd), err: OutputStream(fd: fd)))
        }

        @discardableResult
        func qemuImg(_ args: [String]) throws -> Subprocess.Result { try Self.qemuImg(args) }

        @discardableResult
        static func qemuImg(_ args: [String]) throws -> Subprocess.Result {
            let r = try Subprocess("/usr/bin/qemu-img", args).run()
            try #require(r.status == 0, "qemu-img \(args): \(r.stderrText)")
            return r
        }

        /// Every image gets `pattern` in its first 4 KiB.
        func write(_ pattern: UInt8) throws {
            for image in Self.images {
                let r = try Subprocess("/usr/bin/qemu-io", ["-c", "write -P \(pattern) 0 4k", home + "/" + image]).run()
                try #require(r.status == 0, "\(r.stderrText)")
            }
        }

        /// Whether every image holds `pattern` in its first 4 KiB.
        func holds(_ pattern: UInt8) throws -> Bool {
            try Self.images.allSatisfy { image in
                let r = try Subprocess("/usr/bin/qemu-io", ["-c", "read -P \(pattern) 0 4k", home + "/" + image]).run()
                return r.status == 0 && !r.stdoutText.contains("verification failed")
            }
        }

        func tags(_ image: String) throws -> [String] { try Qcow2SnapshotTable.read(home + "/" + image).map(\.name) }

        /// Every file below the home with its mode and content (links by target).
        func state() throws -> [String: String] {
            var out: [String: String] = [:]
            let fm = FileManager.default
            for rel in try fm.subpathsOfDirectory(atPath: home) {
                let p = home + "/" + rel
                var st = stat()
                lstat(p, &st)
                switch st.st_mode & S_IFMT {
                case S_IFLNK: out[rel] = "link " + ((try? fm.destinationOfSymbolicLink(atPath: p)) ?? "?")
                case S_IFDIR: out[rel] = "dir \(st.st_mode & 0o7777)"
                default: out[rel] = "file \(st.st_mode & 0o7777) \(try SHA256.file(p))"
                }
            }
            return out
        }

        var backups: [String] { ((try? FileManager.default.contentsOfDirectory(atPath: home)) ?? []).filter { $0.hasPrefix("vmtools-backup.") } }

        /// QEMU, paused and without a machine, holding `image` open for
        /// writing: qemu-img cannot change it meanwhile.
        func holdOpen(_ image: String) throws -> Subprocess.Running {
            let running = try Subprocess("/usr/bin/qemu-system-x86_64", ["-machine", "none", "-nodefaults", "-S", "-display", "none",
                                                                         "-drive", "file=\(home)/\(image),if=none,id=d0,format=qcow2"])
                .start(output: s.url("qemu.log"))
            var exited: Int32?
            let held = waitUntil(60) {
                exited = running.exitStatus()
                return exited != nil || (try? Subprocess("/usr/bin/qemu-img", ["info", home + "/" + image]).run().status) == 1
            }
            // An exited QEMU is reaped already: its pid is no longer ours to signal.
            if !held && exited == nil { running.terminate() }
            try #require(held && exited == nil, "QEMU did not take the image's lock (exit status \(String(describing: exited))): \(textIfPresent(s.url("qemu.log")))")
            return running
        }
    }

    @Test(.requires("qemu-img", "qemu-io")) func createRevertListDelete() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil else { return }
        let lab = try Lab()
        try lab.write(0x41)
        let made = try lab.snapshotter().create("before")
        #expect(made.disks == ["hdd1", "hdd2", "vars"])
        #expect(made.complete && made.tpm && !made.live && made.vmStateSize == 0)
        for image in Lab.images { #expect(try lab.tags(image) == ["before"], "\(image)") }
        let copy = lab.home + "/snapshots/before/tpm"
        #expect(try String(contentsOfFile: copy + "/tpm2-00.permall", encoding: .utf8) == "state A")
        #expect(FileSystem.mode(copy + "/tpm2-00.permall") == 0o600)
        #expect(try String(contentsOfFile: copy + "/sub/nv", encoding: .utf8) == "nv A")
        #expect(!FileSystem.lexists(copy + "/planted"), "a link in tpm/ is not followed or copied")
        #expect(lab.backups.isEmpty)

        // Change every image and the TPM, then go back.
        try lab.write(0x42)
        try lab.s.write("vm/tpm/tpm2-00.permall", "state B")
        try lab.s.write("vm/tpm/new", "new")
        #expect(try !lab.holds(0x41))
        try lab.snapshotter().revert("before")
        #expect(try lab.holds(0x41))
        #expect(try lab.s.read("vm/tpm/tpm2-00.permall") == "state A")
        #expect(FileSystem.mode(lab.home + "/tpm/tpm2-00.permall") == 0o600)
        #expect(!lab.s.exists("vm/tpm/new"))
        #expect(!lab.s.exists("vm/snapshots/.resume"), "a stopped snapshot resumes nothing")
        #expect(lab.backups.isEmpty)

        // A second one lists after the first; deleting the first leaves it alone.
        try lab.write(0x43)
        try lab.snapshotter().create("second")
        #expect(try lab.snapshotter().snapshots.list().map(\.name) == ["before", "second"])
        try lab.snapshotter().delete("before")
        for image in Lab.images { #expect(try lab.tags(image) == ["second"], "\(image)") }
        #expect(!lab.s.exists("vm/snapshots/before"))
        let left = try lab.snapshotter().snapshots.list()
        #expect(left.map(\.name) == ["second"] && left.allSatisfy(\.complete))
        try lab.snapshotter().revert("second")
        #expect(try lab.holds(0x43))

        // -f replaces; an automatic one is named after its reason.
        try lab.write(0x44)
        try lab.snapshotter().create("second", replace: true)
        try lab.write(0x45)
        try lab.snapshotter().revert("second")
        #expect(try lab.holds(0x44))
        let auto = try lab.snapshotter().createAutomatic(.merge)
        let again = try lab.snapshotter().createAutomatic(.merge)
        #expect(auto.name.hasPrefix("auto-merge-") && auto.name.count == "auto-merge-YYYYMMDD-HHMMSS".count, "\(auto.name)")
        #expect(again.name != auto.name && again.name.hasPrefix("auto-merge-"))
        #expect(lab.backups.isEmpty)
    }

    /// A live snapshot (RAM saved) reverted on a stopped VM leaves
    /// `snapshots/.resume` for the next start; a stopped one, or deleting
    /// the live one, removes it.
    @Test(.requires("qemu-img", "qemu-io", "qemu-system-x86_64")) func resumeMarker() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-system-x86_64") != nil else { return }
        let lab = try Lab()
        try Qcow2SnapshotTableTests.saveVMState("running", images: Lab.images.map { lab.home + "/" + $0 })
        let live = try #require(try lab.snapshotter().snapshots.snapshot("running"))
        #expect(live.live && live.complete && !live.tpm)
        try lab.snapshotter().create("cold")
        try lab.snapshotter().revert("running")
        #expect(try lab.s.read("vm/snapshots/.resume") == "running\n")
        #expect(try lab.snapshotter().snapshots.resumeMarker() == "running")
        #expect(try lab.s.read("vm/tpm/tpm2-00.permall") == "state A", "a snapshot without a TPM copy leaves tpm/ alone")
        try lab.snapshotter().revert("cold")
        #expect(!lab.s.exists("vm/snapshots/.resume"))
        try lab.snapshotter().revert("running")
        #expect(lab.s.exists("vm/snapshots/.resume"))
        try lab.snapshotter().delete("cold")
        #expect(lab.s.exists("vm/snapshots/.resume"), "only deleting the snapshot it names removes the marker")
        try lab.snapshotter().delete("running")
        #expect(!lab.s.exists("vm/snapshots/.resume"))
        #expect(lab.backups.isEmpty)
    }

    @Test(.requires("qemu-img", "qemu-io")) func refusalsChangeNothing() throws {
        guard requireTool("qemu-img") != nil else { return }
        let lab = try Lab()
        try lab.snapshotter().create("kept")
        // A tag on one image only: what an interrupted foreign change leaves.
        try lab.qemuImg(["snapshot", "-c", "partial", lab.home + "/disk1.qcow2"])
        let partial = try #require(try lab.snapshotter().snapshots.snapshot("partial"))
        #expect(!partial.complete && partial.disks == ["hdd1"])
        let before = try lab.state()

        func refused(_ what: String, _ expected: String, _ body: (Snapshotter) throws -> Void) throws {
            let snapshotter = try lab.snapshotter()
            let e = expectError { try body(snapshotter) }
            #expect(e?.subject == lab.home, "\(what)")
            #expect(e?.message.contains(expected) == true, "\(what): \(e?.message ?? "")")
            #expect(e?.message.contains("\n") == false, "\(what): one line")
            #expect(try lab.state() == before, "\(what) changed the home")
        }
        try refused("bad name", "all digits") { try $0.create("1") }
        try refused("bad name", "only letters") { try $0.create("a b") }
        try refused("duplicate", "a snapshot 'kept' exists already") { try $0.create("kept") }
        try refused("revert of none", "no snapshot 'gone'") { try $0.revert("gone") }
        try refused("delete of none", "no snapshot 'gone'") { try $0.delete("gone") }
        try refused("incomplete", "snapshot 'partial' is not on hdd2 (\(lab.home)/disk2.qcow2)") { try $0.revert("partial") }

        // Forks rest on the disks: revert, delete and replace are refused, naming them.
        try lab.s.write("vm/fork/vm.settings", "parent ..\n")
        try lab.s.write("vm/childs.lst", lab.home + "/fork\n")
        let withForks = try lab.state()
        for (what, body) in [("revert", { (s: Snapshotter) in try s.revert("kept") }), ("delete", { try $0.delete("kept") }),
                             ("replace", { _ = try $0.create("kept", replace: true) })] {
            let e = expectError { try body(try lab.snapshotter()) }
            #expect(e?.message.contains("has forks resting on its disks (\(lab.home)/fork)") == true, "\(what): \(e?.message ?? "")")
            #expect(try lab.state() == withForks, "\(what) changed the home")
        }
        // Taking one changes no disk's contents: allowed with forks.
        #expect(try lab.snapshotter().create("with-forks").complete)
    }

    @Test(.requires("qemu-img"), arguments: [
        ("vm_storage_hdd3_backend=disk3.raw\n", "hdd3 (DIR/disk3.raw) is raw, not qcow2"),
        ("vm_storage_hdd3_backend=snap:disk1.qcow2\n", "hdd3 (DIR/disk1.qcow2) is a snap: disk (its changes are thrown away)"),
        ("vm_storage_hdd3_backend=ro:disk1.qcow2\n", "hdd3 (DIR/disk1.qcow2) is a read-only ro: disk"),
        ("vm_storage_hdd3_backend=nbd://127.0.0.1:10809/x\n", "hdd3 (nbd://127.0.0.1:10809/x) is a remote disk"),
        ("vm_storage_hdd3_backend=/dev/null\n", "hdd3 (/dev/null) is not a regular file"),
        ("vm_storage_hdd3_backend=missing.qcow2\n", "hdd3 (DIR/missing.qcow2) does not exist"),
    ])
    func refusedDisks(_ setting: String, _ expected: String) throws {
        guard requireTool("qemu-img") != nil else { return }
        let lab = try Lab(extraSettings: setting)
        try lab.qemuImg(["create", "-q", "-f", "raw", lab.home + "/disk3.raw", "1M"])
        let before = try lab.state()
        for (what, body) in [("create", { (s: Snapshotter) in _ = try s.create("x") }), ("revert", { try $0.revert("x") })] {
            let e = expectError { try body(try lab.snapshotter()) }
            #expect(e?.subject == lab.home)
            #expect(e?.message == expected.replacingOccurrences(of: "DIR", with: lab.home)
                    + ": a snapshot needs every disk of the VM to be a writable qcow2 image", "\(what)")
            #expect(try lab.state() == before, "\(what) changed the home")
        }
        #expect(try lab.snapshotter().snapshots.list().isEmpty)
    }

    /// A create that fails on the second disk is undone: the first loses
    /// the tag again, snapshots/NAME goes.
    @Test(.requires("qemu-img", "qemu-system-x86_64")) func failedCreateIsUndone() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-system-x86_64") != nil else { return }
        let lab = try Lab()
        let qemu = try lab.holdOpen("disk2.qcow2")
        defer { qemu.terminate() }
        let e = expectError { _ = try lab.snapshotter().create("x") }
        #expect(e?.subject == lab.home + "/disk2.qcow2", "\(String(describing: e))")
        for image in Lab.images { #expect(try lab.tags(image).isEmpty, "\(image)") }
        #expect(!lab.s.exists("vm/snapshots"))
        #expect(lab.backups.isEmpty)
    }

    /// A revert and a delete that cannot finish (a disk held open) keep
    /// their journal; once the disk is free, `vmfix -b` completes them.
    @Test(.requires("qemu-img", "qemu-io", "qemu-system-x86_64")) func unfinishedRevertAndDeleteAreCompletedByVmfix() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-system-x86_64") != nil else { return }
        let lab = try Lab()
        try lab.write(0x41)
        try lab.snapshotter().create("before")
        try lab.write(0x42)
        try lab.s.write("vm/tpm/tpm2-00.permall", "state B")

        var qemu = try lab.holdOpen("disk2.qcow2")
        let e = expectError { try lab.snapshotter().revert("before") }
        #expect(e?.subject == lab.home + "/disk2.qcow2", "\(String(describing: e))")
        let kept = try #require(lab.backups.first, "the backup directory stays for vmfix -b")
        guard case .interrupted(let steps) = Transaction.inspect(backupDirectory: lab.home + "/" + kept) else {
            Issue.record("not an interrupted journal")
            return
        }
        for image in Lab.images {
            #expect(steps.contains(.applySnapshot(image: lab.home + "/" + image, tag: "before")), "\(image)")
        }
        #expect(try lab.s.read("log").contains("'vmfix -b' finishes the job from \(lab.home)/\(kept)"))
        qemu.terminate()
        #expect(try fix(lab) == ExitCode.soft.rawValue)
        #expect(try lab.holds(0x41), "vmfix -b finished the revert")
        #expect(try lab.s.read("vm/tpm/tpm2-00.permall") == "state A")
        #expect(lab.backups.isEmpty)

        qemu = try lab.holdOpen("disk2.qcow2")
        #expect(expectError { try lab.snapshotter().delete("before") } != nil)
        qemu.terminate()
        #expect(lab.backups.count == 1)
        #expect(try fix(lab) == ExitCode.soft.rawValue)
        for image in Lab.images { #expect(try lab.tags(image).isEmpty, "\(image)") }
        #expect(!lab.s.exists("vm/snapshots/before"))
        #expect(lab.backups.isEmpty)
    }

    /// vmfix -s reports a snapshot on some images only, and removes a
    /// `snapshots/NAME/` of no snapshot and a `.resume` naming none (only
    /// reports them under -n).
    @Test(.requires("qemu-img")) func vmfixChecksSnapshots() throws {
        guard requireTool("qemu-img") != nil else { return }
        let lab = try Lab()
        try lab.snapshotter().create("whole")
        #expect(try fix(lab, "-sn") == ExitCode.success.rawValue, "\(textIfPresent(lab.log))")
        try lab.qemuImg(["snapshot", "-c", "partial", lab.home + "/disk1.qcow2"])
        try lab.s.write("vm/snapshots/stray/tpm/tpm2-00.permall", "old")
        try lab.s.write("vm/snapshots/.resume", "whole\n")
        let before = try lab.state()
        #expect(try fix(lab, "-sn") == ExitCode.soft.rawValue)
        #expect(try lab.state() == before, "-n changes nothing")
        let log = try lab.s.read("log")
        #expect(log.contains("\(lab.home): snapshot partial is on hdd1 only; 'vmsnap -d' removes it"), "\(log)")
        #expect(log.contains("\(lab.home): \(lab.home)/snapshots/stray belongs to no snapshot (no image holds stray)"), "\(log)")
        #expect(log.contains("\(lab.home)/snapshots/.resume names whole, which is not a live snapshot of the VM"), "\(log)")
        #expect(try fix(lab, "-s") == ExitCode.soft.rawValue)
        #expect(!lab.s.exists("vm/snapshots/stray") && !lab.s.exists("vm/snapshots/.resume"))
        #expect(lab.s.exists("vm/snapshots/whole/tpm/tpm2-00.permall"))
        #expect(try lab.tags("disk1.qcow2") == ["whole", "partial"], "an incomplete snapshot is the user's to delete")
        #expect(lab.backups.isEmpty)
        try lab.snapshotter().delete("partial")
        #expect(try fix(lab, "-s") == ExitCode.success.rawValue)
    }

    func fix(_ lab: Lab, _ flags: String = "-b") throws -> Int32 {
        let fd = open(lab.log, O_WRONLY | O_APPEND)
        defer { close(fd) }
        let console = Console(command: "vmfix", out: OutputStream(fd: fd), err: OutputStream(fd: fd))
        let context = Context(environment: lab.environment, cwd: lab.s.path, paths: lab.s.paths, console: console)
        return VMTools.run(VMFixCommand.self, [flags, lab.home], context)
    }
}
