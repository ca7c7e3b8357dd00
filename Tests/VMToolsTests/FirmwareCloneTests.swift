import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// The firmware variable store and the TPM state through a VM's life
/// (vm.settings(5) FIRMWARE AND TPM OF CLONES): vmfork and vmcp give each
/// clone its own store, the TPM state as documented, vmmv carries both,
/// vmrm leaves nothing, vmfix knows them. Made by hand, no boot.
@Suite struct FirmwareCloneTests {
    static let store = VMFileNames.firmwareVars
    static let tpm = VMFileNames.tpmDirectory
    static let tpmFile = "tpm/tpm2-00.permall"

    /// A VM whose home holds a qcow2 store with a pattern and a TPM state directory (0700, a 0600 file).
    func base(_ cli: CLI, _ name: String = "base") throws -> String {
        if !cli.scratch.exists("vms") { try cli.scratch.mkdir("vms") }
        let home = cli.scratch.url("vms/" + name)
        let r = try cli.run("vmcreate", ["-q", "-n", "-y", "-o", "vm_ram_size=256M", "-o", "vm_firmware=uefi", "-o", "vm_tpm=2.0", "--", home])
        try #require(r.status == 0, "\(r.err)")
        let c = try Subprocess("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", home + "/" + Self.store, "540K"]).run()
        try #require(c.status == 0, "\(c.stderrText)")
        let w = try Subprocess("/usr/bin/qemu-io", ["-c", "write -P 0x5a 0 4k", home + "/" + Self.store]).run()
        try #require(w.status == 0, "\(w.stderrText)")
        try FileManager.default.createDirectory(atPath: home + "/tpm", withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        try Data("sealed secrets of \(name)".utf8).write(to: URL(fileURLWithPath: home + "/" + Self.tpmFile))
        chmod(home + "/" + Self.tpmFile, 0o600)
        return home
    }

    func stat(_ path: String) -> Glibc.stat? {
        var st = Glibc.stat()
        return lstat(path, &st) == 0 ? st : nil
    }

    /// Its own file: another inode, one link, same bytes as the source's right now.
    func expectOwnCopy(_ source: String, _ copy: String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let a = stat(source), let b = stat(copy) else {
            Issue.record("\(copy) or \(source) is missing", sourceLocation: sourceLocation)
            return
        }
        #expect(a.st_ino != b.st_ino, "\(copy) is the source's file", sourceLocation: sourceLocation)
        #expect(b.st_nlink == 1 && b.st_mode & S_IFMT == S_IFREG, "\(copy) is a link", sourceLocation: sourceLocation)
        #expect(b.st_mode & 0o777 == a.st_mode & 0o777, sourceLocation: sourceLocation)
        #expect(FileManager.default.contentsEqual(atPath: source, andPath: copy), sourceLocation: sourceLocation)
    }

    @Test(.requires("qemu-img", "qemu-io", "qemu-system-x86_64")) func forksAndCopiesGetTheirOwnStore() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil, requireTool("qemu-system-x86_64") != nil else { return }
        let cli = try CLI(Scratch())
        let home = try base(cli)
        let fork = cli.scratch.url("vms/fork"), keep = cli.scratch.url("vms/keep"), copy = cli.scratch.url("vms/copy"), alone = cli.scratch.url("vms/alone")
        for (command, flags, dest) in [("vmfork", [String](), fork), ("vmfork", ["-k"], keep), ("vmcp", [], copy), ("vmcp", ["-a"], alone)] {
            let r = try cli.run(command, ["-q"] + flags + [home, dest])
            #expect(r.status == 0, "\(command) \(flags): \(r.err)")
            #expect(r.err.contains("NOTICE: \(dest): gets a fresh TPM") == (dest == fork), "\(r.err)")
            expectOwnCopy(home + "/" + Self.store, dest + "/" + Self.store)
        }
        // A plain fork starts with a fresh TPM; -k and copies keep the state, still private.
        #expect(!FileManager.default.fileExists(atPath: fork + "/tpm"))
        for dest in [keep, copy, alone] {
            expectOwnCopy(home + "/" + Self.tpmFile, dest + "/" + Self.tpmFile)
            #expect(stat(dest + "/tpm").map { $0.st_mode & 0o777 } == 0o700)
        }
        // The parent's store changes; the fork's does not follow.
        let w = try Subprocess("/usr/bin/qemu-io", ["-c", "write -P 0x11 0 4k", home + "/" + Self.store]).run()
        #expect(w.status == 0)
        #expect(!FileManager.default.contentsEqual(atPath: home + "/" + Self.store, andPath: fork + "/" + Self.store))
        let check = try Subprocess("/usr/bin/qemu-img", ["check", "-q", fork + "/" + Self.store]).run()
        #expect(check.status == 0, "\(check.stderrText)")
    }

    /// Directory recursion takes a VM's tpm/ as its state, not as a tree
    /// directory to recreate empty (which would also make the copy fail).
    @Test(.requires("qemu-img", "qemu-io", "qemu-system-x86_64")) func recursiveCopiesCarryTheTPMState() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil, requireTool("qemu-system-x86_64") != nil else { return }
        let cli = try CLI(Scratch())
        let home = try base(cli)
        let inner = try base(cli, "base/inner")
        let r = try cli.run("vmcp", ["-q", "-r", home, cli.scratch.url("vms/tree")])
        #expect(r.status == 0, "\(r.err)")
        expectOwnCopy(home + "/" + Self.tpmFile, cli.scratch.url("vms/tree/" + Self.tpmFile))
        expectOwnCopy(inner + "/" + Self.tpmFile, cli.scratch.url("vms/tree/inner/" + Self.tpmFile))
        expectOwnCopy(inner + "/" + Self.store, cli.scratch.url("vms/tree/inner/" + Self.store))
        let f = try cli.run("vmfork", ["-q", "-r", home, cli.scratch.url("vms/forks")])
        #expect(f.status == 0, "\(f.err)")
        #expect(!FileManager.default.fileExists(atPath: cli.scratch.url("vms/forks/tpm")))
        #expect(!FileManager.default.fileExists(atPath: cli.scratch.url("vms/forks/inner/tpm")))
        expectOwnCopy(inner + "/" + Self.store, cli.scratch.url("vms/forks/inner/" + Self.store))
    }

    /// Killed at each journaled step of a fork, `vmfix -b` leaves no store
    /// or TPM state behind, and the source keeps both.
    @Test(.requires("qemu-img", "qemu-io", "qemu-system-x86_64")) func anInterruptedCopyLeavesNoFirmwareFiles() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil, requireTool("qemu-system-x86_64") != nil else { return }
        let cli = try CLI(Scratch())
        let home = try base(cli)
        let dest = cli.scratch.url("vms/copy")
        var step = 1
        while step < 20 {
            let r = try cli.run("vmcp", ["-q", home, dest], env: ["VMTOOLS_FAULT_KILL_AT_STEP": String(step)])
            if r.status == 0 { break }
            let fix = try cli.run("vmfix", ["-b", cli.scratch.url("vms")])
            #expect(fix.status == 3, "step \(step): \(fix.err)")
            #expect(!FileManager.default.fileExists(atPath: dest), "step \(step): \(dest) is left")
            step += 1
        }
        #expect(step > 3 && step < 20, "the copy never completed or had no steps to kill")
        expectOwnCopy(home + "/" + Self.store, dest + "/" + Self.store)
        expectOwnCopy(home + "/" + Self.tpmFile, dest + "/" + Self.tpmFile)
    }

    @Test(.requires("qemu-img", "qemu-io", "qemu-system-x86_64")) func vmmvCarriesBothAndVmrmLeavesNothing() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil, requireTool("qemu-system-x86_64") != nil else { return }
        let cli = try CLI(Scratch())
        let home = try base(cli)
        let store = try Data(contentsOf: URL(fileURLWithPath: home + "/" + Self.store))
        let moved = cli.scratch.url("vms/moved")
        let m = try cli.run("vmmv", [home, moved])
        #expect(m.status == 0, "\(m.err)")
        #expect(!FileManager.default.fileExists(atPath: home))
        #expect(try Data(contentsOf: URL(fileURLWithPath: moved + "/" + Self.store)) == store)
        #expect(try String(contentsOfFile: moved + "/" + Self.tpmFile, encoding: .utf8) == "sealed secrets of base")
        #expect(try FileManager.default.contentsOfDirectory(atPath: moved + "/tpm") == ["tpm2-00.permall"])

        // -k forgets the VM but keeps its guest's state with its disks.
        let kept = try base(cli, "kept")
        let k = try cli.run("vmrm", ["-k", "-y", kept])
        #expect(k.status == 0, "\(k.err)")
        #expect(FileManager.default.fileExists(atPath: kept + "/" + Self.store) && FileManager.default.fileExists(atPath: kept + "/" + Self.tpmFile))

        let r = try cli.run("vmrm", ["-y", moved])
        #expect(r.status == 0, "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: moved))
        #expect(try FileManager.default.contentsOfDirectory(atPath: cli.scratch.url("vms")).sorted() == ["kept"])
    }

    /// `vmfix -s`: a store that is not a qcow2, a damaged one, one shared
    /// by a hard link, a TPM state others can read; `-n` only reports.
    @Test(.requires("qemu-img", "qemu-io", "qemu-system-x86_64")) func vmfixKnowsTheStoreAndTheTPMState() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil, requireTool("qemu-system-x86_64") != nil else { return }
        let cli = try CLI(Scratch())
        let cut = try base(cli, "cut"), damaged = try base(cli, "damaged"), linked = try base(cli, "linked"), open = try base(cli, "open")
        let clean = try base(cli, "clean")
        FileManager.default.createFile(atPath: cut + "/" + Self.store, contents: Data())
        // Zeroes over the refcount block (at 128 KiB with 64 KiB clusters): every cluster's count is wrong.
        let h = try #require(FileHandle(forWritingAtPath: damaged + "/" + Self.store))
        try h.seek(toOffset: 0x20000)
        h.write(Data(count: 1024))
        try h.close()
        try FileManager.default.removeItem(atPath: linked + "/" + Self.store)
        try FileManager.default.linkItem(atPath: clean + "/" + Self.store, toPath: linked + "/" + Self.store)
        chmod(open + "/tpm", 0o755)
        chmod(open + "/" + Self.tpmFile, 0o644)

        let homes = [cut, damaged, linked, open]
        let report = try cli.run("vmfix", ["-sn"] + homes)
        #expect(report.status == 3, "\(report.err)")
        #expect(report.err.contains("WARNING: \(cut): the firmware variable store \(cut)/\(Self.store) is not a qcow2 image"))
        #expect(report.err.contains("WARNING: \(damaged): the firmware variable store \(damaged)/\(Self.store) is damaged"))
        #expect(report.err.contains("WARNING: \(linked): the firmware variable store \(linked)/\(Self.store) is shared with another file (a hard link)"))
        #expect(report.err.contains("WARNING: \(open): the TPM state is readable by others: \(open)/tpm, \(open)/\(Self.tpmFile)"))
        #expect(!report.err.contains("SOLVED"))
        #expect(FileManager.default.fileExists(atPath: cut + "/" + Self.store) && stat(linked + "/" + Self.store)?.st_nlink == 2)

        let fix = try cli.run("vmfix", ["-s"] + homes)
        #expect(fix.status == 3, "\(fix.err)")
        #expect(fix.err.contains("SOLVED: \(cut)/\(Self.store): removed; the next UEFI start makes a new one"))
        #expect(fix.err.contains("SOLVED: \(damaged)/\(Self.store): repaired (qemu-img check -r all)"))
        #expect(!FileManager.default.fileExists(atPath: cut + "/" + Self.store))
        expectOwnCopy(clean + "/" + Self.store, linked + "/" + Self.store)
        #expect(stat(open + "/tpm").map { $0.st_mode & 0o777 } == 0o700)
        #expect(stat(open + "/" + Self.tpmFile).map { $0.st_mode & 0o777 } == 0o600)
        let again = try cli.run("vmfix", ["-sn", clean] + homes)
        #expect(again.status == 0, "\(again.err)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: cut).sorted() == ["hdd.qcow2", "tpm", "vm.settings"])
    }

    /// vmmerge: the merged child's store and TPM state win in its parent
    /// (-p); a child without a TPM state gets the merged parent's (-c). A
    /// home's tpm/ is its state, not a stray directory vmmerge must refuse.
    @Test(.requires("qemu-img", "qemu-io", "qemu-system-x86_64")) func vmmergeKeepsTheMergedVMsState() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil, requireTool("qemu-system-x86_64") != nil else { return }
        let cli = try CLI(Scratch())
        let home = try base(cli)
        let child = home + "/child"
        #expect(try cli.run("vmfork", ["-q", "-k", home, child]).status == 0)
        #expect(try Subprocess("/usr/bin/qemu-io", ["-c", "write -P 0x77 0 4k", child + "/" + Self.store]).run().status == 0)
        try Data("the child's secrets".utf8).write(to: URL(fileURLWithPath: child + "/" + Self.tpmFile))
        let childStore = try Data(contentsOf: URL(fileURLWithPath: child + "/" + Self.store))
        let p = try cli.run("vmmerge", ["-y", child])
        #expect(p.status == 0, "\(p.err)")
        #expect(!FileManager.default.fileExists(atPath: child))
        #expect(try Data(contentsOf: URL(fileURLWithPath: home + "/" + Self.store)) == childStore)
        #expect(try String(contentsOfFile: home + "/" + Self.tpmFile, encoding: .utf8) == "the child's secrets")
        #expect(try FileManager.default.contentsOfDirectory(atPath: home).filter { $0.hasPrefix("vmtools-backup") }.isEmpty)

        let fork = cli.scratch.url("vms/fork")
        #expect(try cli.run("vmfork", ["-q", home, fork]).status == 0)
        let forkStore = try Data(contentsOf: URL(fileURLWithPath: fork + "/" + Self.store))
        let c = try cli.run("vmmerge", ["-c", "-y", home])
        #expect(c.status == 0, "\(c.err)")
        #expect(!FileManager.default.fileExists(atPath: home))
        #expect(try Data(contentsOf: URL(fileURLWithPath: fork + "/" + Self.store)) == forkStore)
        #expect(try String(contentsOfFile: fork + "/" + Self.tpmFile, encoding: .utf8) == "the child's secrets")
        #expect(stat(fork + "/tpm").map { $0.st_mode & 0o777 } == 0o700)
    }
}
