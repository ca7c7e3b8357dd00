import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// vmcp, vmfork's copy modes, vmmv, vmmerge and vmfix on real qcow2 trees
/// (vmcp(1), vmfix(1)): data checked through the backing chains, both
/// sides of every parent/child link checked with `vmfix -ran`.
@Suite struct TreeTests {
    func tree() throws -> Tree? {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil else { return nil }
        return try Tree(CLI(Scratch()))
    }

    /// A VM home `big` whose raw disk holds `mebibytes` of data (no holes).
    @discardableResult
    func bigVM(_ cli: CLI, mebibytes: Int) throws -> String {
        try cli.scratch.mkdir("big")
        let disk = cli.scratch.url("big/disk.img")
        let fd = open(disk, O_WRONLY | O_CREAT, 0o644)
        let chunk = [UInt8](repeating: 0x5a, count: 8 << 20)
        for i in 0..<(mebibytes / 8) { _ = pwrite(fd, chunk, chunk.count, off_t(i * chunk.count)) }
        close(fd)
        return try cli.scratch.write("big/vm.settings", "vm_name=big\nvm_storage_hdd1_backend=\(disk)\n")
    }

    /// A fresh directory on a filesystem other than `path`'s (tmpfs /dev/shm).
    func directoryOnAnotherFilesystem(than path: String) throws -> String {
        let other = try #require(["/dev/shm", "/run/user/\(getuid())"].first { FileSystem.device($0) != nil && FileSystem.device($0) != FileSystem.device(path) },
                                 "no second filesystem (/dev/shm) to use")
        let dir = other + "/vmtools-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test(.requires("qemu-img", "qemu-io")) func aCopySharesTheSourcesParent() throws {
        guard let t = try tree() else { return }
        let r = try t.cli.run("vmcp", [t.path("B"), t.root])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("INFO: \(t.path("B")): copied to '\(t.root)/B'"))
        let copy = t.root + "/B"
        #expect(try t.settings(copy).parent == t.path("R"))
        #expect(t.children(t.path("R")) == [t.root + "/B", t.path("D"), t.path("B")].sorted(by: bytewiseLess))
        // Its own disk, on the same backing file, holding the same data; a new MAC.
        #expect(try t.backing(copy + "/hdd.qcow2") == t.path("R") + "/hdd.qcow2")
        #expect(t.content(of: copy + "/hdd.qcow2") == "B")
        #expect(try t.settings(copy).value("vm_networking_iface1_mac") != t.settings(t.path("B")).value("vm_networking_iface1_mac"))
        // C stays B's child only; the second copy is B_1.
        #expect(t.children(copy).isEmpty)
        #expect(try t.cli.run("vmcp", ["-q", t.path("B"), t.root]).status == 0)
        #expect(FileManager.default.fileExists(atPath: t.root + "/B_1/vm.settings"))
        #expect(t.leftovers().isEmpty)
        #expect(try t.consistent())
    }

    @Test(.requires("qemu-img", "qemu-io")) func anAutonomousCopyStandsAlone() throws {
        guard let t = try tree() else { return }
        for (command, args) in [("vmcp", ["-a", t.path("C"), t.root + "/alone"]), ("vmfork", ["-a", t.path("C"), t.root + "/alone2"])] {
            let r = try t.cli.run(command, args)
            #expect(r.status == 0, "\(r.err)")
            let home = args.last!
            let f = try t.settings(home)
            #expect(f.parent == nil)
            #expect(f.value("vm_ram_size") == "256M")  // inherited from R, now its own
            #expect(try t.backing(home + "/hdd.qcow2") == nil)
            #expect(t.content(of: home + "/hdd.qcow2") == "C")
        }
        #expect(!t.children(t.path("C")).contains { $0.hasPrefix(t.root + "/alone") })
        // The source was only read: a fork -c gives the same as vmcp.
        #expect(try t.cli.run("vmfork", ["-c", t.path("C"), t.root + "/copyC"]).status == 0)
        #expect(try t.settings(t.root + "/copyC").parent == t.path("B"))
        #expect(try t.consistent())
    }

    @Test(.requires("qemu-img", "qemu-io")) func compressedSnapshotCopiesKeepingTheMAC() throws {
        guard let t = try tree() else { return }
        let r = try t.cli.run("vmcp", ["-z", "-s", "-k", "-o", "vm_ram_size=512M", t.path("C"), t.root + "/z"])
        #expect(r.status == 0, "\(r.err)")
        let f = try t.settings(t.root + "/z")
        #expect(f.value("vm_storage_hdd1_backend") == "snap:" + t.root + "/z/hdd.qcow2")
        #expect(try f.value("vm_networking_iface1_mac") == t.settings(t.path("C")).value("vm_networking_iface1_mac"))
        #expect(f.value("vm_ram_size") == "512M")
        let info = try QemuImg.info(t.root + "/z/hdd.qcow2", backingChain: false, environment: ["PATH": "/usr/bin"])
        #expect(info["format"]?.stringValue == "qcow2")
        #expect(info["full-backing-filename"]?.stringValue == t.path("B") + "/hdd.qcow2")
        #expect(t.content(of: t.root + "/z/hdd.qcow2") == "C")
        // -M takes whole module names only: "mac" is no module (an error, as
        // with -m), not a part of networking_iface_mac.
        let m = try t.cli.run("vmcp", ["-M", "mac", t.path("C"), t.root + "/m"])
        #expect(m.status == 1 && m.err.contains("module 'mac' not found"), "\(m.err)")
        #expect(!FileManager.default.fileExists(atPath: t.root + "/m"))
        let n = try t.cli.run("vmcp", ["-m", "no_such_module", t.path("C"), t.root + "/n"])
        #expect(n.status == 1 && n.err.contains("module 'no_such_module' not found"), "\(n.err)")
        #expect(!FileManager.default.fileExists(atPath: t.root + "/n"))
        #expect(try t.cli.run("vmcp", [t.path("C"), t.path("B"), t.root + "/not-a-dir"]).status == 2)
    }

    @Test(.requires("qemu-img", "qemu-io")) func childRecursionPlacesChildrenInsideTheirNewParent() throws {
        guard let t = try tree() else { return }
        // A second child of R named like its first: the copies become B and B_1.
        try FileManager.default.createDirectory(atPath: t.root + "/other", withIntermediateDirectories: true)
        #expect(try t.cli.run("vmfork", ["-q", t.path("R"), t.root + "/other/B"]).status == 0)
        let r = try t.cli.run("vmcp", ["-R", "-y", t.path("R"), t.root + "/copy"])
        #expect(r.status == 0, "\(r.err)")
        let copy = t.root + "/copy"
        #expect(try t.settings(copy).parent == nil)
        #expect(t.children(copy) == [copy + "/B", copy + "/B_1", copy + "/D"])
        #expect(t.children(copy + "/B") == [copy + "/B/C"])
        // Each overlay is re-pointed at its new parent's copy.
        #expect(try t.backing(copy + "/B/hdd.qcow2") == copy + "/hdd.qcow2")
        #expect(try t.backing(copy + "/B/C/hdd.qcow2") == copy + "/B/hdd.qcow2")
        #expect(try t.backing(copy + "/D/hdd.qcow2") == copy + "/hdd.qcow2")
        for (home, data) in [(copy, "R"), (copy + "/D", "D"), (copy + "/B/C", "C")] {
            #expect(t.content(of: home + "/hdd.qcow2") == data, "\(home)")
        }
        #expect(try t.consistent())
    }

    @Test(.requires("qemu-img", "qemu-io")) func directoryRecursionMirrorsPlainDirectories() throws {
        guard let t = try tree() else { return }
        let plain = t.root + "/plain/sub"
        try FileManager.default.createDirectory(atPath: plain, withIntermediateDirectories: true)
        #expect(try t.cli.run("vmcp", ["-q", t.path("C"), plain]).status == 0)
        let r = try t.cli.run("vmcp", ["-r", t.root + "/plain", t.root + "/mirror"])
        #expect(r.status == 0, "\(r.err)")
        let copy = t.root + "/mirror/sub/C"
        #expect(try t.settings(copy).parent == t.path("B"))  // its parent is outside: a plain copy
        #expect(t.content(of: copy + "/hdd.qcow2") == "C")
        // -r of R: everything below, links translated inside the copy.
        #expect(try t.cli.run("vmcp", ["-r", t.path("R"), t.root + "/Rcopy"]).status == 0)
        #expect(try t.settings(t.root + "/Rcopy/B/C").parent == t.root + "/Rcopy/B")
        #expect(try t.backing(t.root + "/Rcopy/B/C/hdd.qcow2") == t.root + "/Rcopy/B/hdd.qcow2")
        #expect(t.content(of: t.root + "/Rcopy/B/C/hdd.qcow2") == "C")
        #expect(try t.consistent())
    }

    /// `vmcp -R foo foo/foo_bis` (vmcp(1)): the copy lands inside its
    /// own source's tree and does not copy itself again; vmmv still refuses.
    @Test(.requires("qemu-img", "qemu-io")) func recursiveCopyIntoItsOwnTree() throws {
        guard let t = try tree() else { return }
        // R/B exists: the copy is R/B/R, with R's whole tree inside.
        let r = try t.cli.run("vmcp", ["-R", "-y", t.path("R"), t.path("B")])
        #expect(r.status == 0, "\(r.err)")
        let copy = t.path("B") + "/R"
        #expect(t.children(copy) == [copy + "/B", copy + "/D"])
        #expect(t.children(copy + "/B") == [copy + "/B/C"])
        #expect(!FileManager.default.fileExists(atPath: copy + "/B/R"), "the copy copied itself")
        for (home, data) in [(copy, "R"), (copy + "/B", "B"), (copy + "/B/C", "C"), (copy + "/D", "D")] {
            #expect(t.content(of: home + "/hdd.qcow2") == data, "\(home)")
        }
        #expect(try t.backing(copy + "/B/C/hdd.qcow2") == copy + "/B/hdd.qcow2")
        // -r into a new directory inside: the layout below R, without the copy itself.
        let inside = t.path("R") + "/inside"
        let d = try t.cli.run("vmcp", ["-r", t.path("R"), inside])
        #expect(d.status == 0, "\(d.err)")
        #expect(try t.settings(inside + "/B/C").parent == inside + "/B")
        #expect(try t.settings(inside + "/B/R/B/C").parent == inside + "/B/R/B")
        #expect(t.content(of: inside + "/B/R/B/C/hdd.qcow2") == "C")
        #expect(!FileManager.default.fileExists(atPath: inside + "/inside"), "the copy copied itself")
        #expect(try t.consistent())
        let mv = try t.cli.run("vmmv", [t.path("R"), t.path("B")])
        #expect(mv.status == 1 && mv.err.contains("cannot move a VM into itself"), "\(mv.err)")
        #expect(try t.consistent())
    }

    @Test(.requires("qemu-img")) func copiesStaySparse() throws {
        guard requireTool("qemu-img") != nil else { return }
        let cli = try CLI(Scratch())
        try cli.scratch.mkdir("big")
        let disk = cli.scratch.url("big/disk.img")
        #expect(truncate(disk, 1 << 30) == 0 || FileManager.default.createFile(atPath: disk, contents: nil) && truncate(disk, 1 << 30) == 0)
        let fd = open(disk, O_WRONLY)
        let data = [UInt8](repeating: 0x5a, count: 1 << 20)
        #expect(pwrite(fd, data, data.count, 512 << 20) == data.count)
        close(fd)
        _ = try cli.scratch.write("big/vm.settings", "vm_name=big\nvm_storage_hdd1_backend=\(disk)\nvm_storage_hdd1_enable=yes\n")
        #expect(try cli.run("vmcp", [cli.scratch.url("big"), cli.scratch.url("copy")]).status == 0)
        var st = stat()
        #expect(stat(cli.scratch.url("copy/disk.img"), &st) == 0)
        #expect(st.st_size == 1 << 30)
        #expect(Int(st.st_blocks) * 512 <= 4 << 20, "the copy takes \(Int(st.st_blocks) * 512) bytes")
        #expect(FileManager.default.contentsEqual(atPath: disk, andPath: cli.scratch.url("copy/disk.img")))
    }

    /// On a terminal a long copy shows a progress bar (util-linux `script`
    /// gives vmcp a pseudo-terminal); in a pipe it stays quiet.
    @Test(.requires("script")) func aCopyShowsProgressOnATerminal() throws {
        guard requireTool("script") != nil else { return }
        let cli = try CLI(Scratch())
        try bigVM(cli, mebibytes: 256)
        let command = [cli.bin + "/vmcp", cli.scratch.url("big"), cli.scratch.url("copy")].map(shellQuote).joined(separator: " ")
        let r = try Subprocess("/usr/bin/script", ["-q", "-e", "-c", command, "/dev/null"], environment: cli.environment).run()
        #expect(r.status == 0, "\(r.stderrText)")
        #expect(r.stdoutText.contains("disk.img [") && r.stdoutText.contains("##############################] 100%"), "\(r.stdoutText)")
        let piped = try cli.run("vmcp", [cli.scratch.url("big"), cli.scratch.url("copy2")])
        #expect(piped.status == 0 && !piped.err.contains("%"), "\(piped.err)")
    }

    @Test(.requires("qemu-img", "qemu-io")) func moveRelinksEverySideAndMovingBackRestoresIt() throws {
        guard let t = try tree() else { return }
        // The user's own lines survive: settings are changed in place.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: t.path("B") + "/vm.settings"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("# Notes: B is the staging server.\n".utf8))
        try handle.close()
        let before = t.listing()
        func settings() -> [String?] { Tree.names.map { try? String(contentsOfFile: t.path($0) + "/vm.settings", encoding: .utf8) } }
        let settingsBefore = settings()
        let images = Tree.names.map { (try? Data(contentsOf: URL(fileURLWithPath: t.path($0) + "/hdd.qcow2"))) }
        let r = try t.cli.run("vmmv", [t.path("B"), t.root + "/Bmoved"])
        #expect(r.status == 0, "\(r.err)")
        let moved = t.root + "/Bmoved"
        #expect(t.children(t.path("R")) == [moved, t.path("D")])
        #expect(try t.settings(moved).value("vm_name") == "Bmoved")
        #expect(try String(contentsOfFile: moved + "/vm.settings", encoding: .utf8).hasSuffix("# Notes: B is the staging server.\n"))
        #expect(try t.settings(moved + "/C").parent == moved)
        #expect(try t.settings(moved).value("vm_storage_hdd1_backend") == moved + "/hdd.qcow2")
        #expect(try t.backing(moved + "/C/hdd.qcow2") == moved + "/hdd.qcow2")
        #expect(t.content(of: moved + "/C/hdd.qcow2") == "C")
        #expect(try t.consistent())
        // Into an existing directory: X/Bmoved, and X/Bmoved_1 when that is taken.
        try FileManager.default.createDirectory(atPath: t.root + "/X/Bmoved", withIntermediateDirectories: true)
        try Data("x".utf8).write(to: URL(fileURLWithPath: t.root + "/X/Bmoved/keep"))
        #expect(try t.cli.run("vmmv", ["-y", moved, t.root + "/X"]).status == 0)
        #expect(FileManager.default.fileExists(atPath: t.root + "/X/Bmoved_1/C/vm.settings"))
        #expect(try t.cli.run("vmmv", [t.root + "/X/Bmoved_1", t.root + "/X/Bmoved_1/C/deeper"]).status == 1)
        #expect(try t.cli.run("vmmv", [t.root + "/X/Bmoved_1", t.path("B")]).status == 0)
        try FileManager.default.removeItem(atPath: t.root + "/X")
        #expect(t.listing() == before)
        #expect(Tree.names.map { (try? Data(contentsOf: URL(fileURLWithPath: t.path($0) + "/hdd.qcow2"))) } == images)
        #expect(settings() == settingsBefore)  // byte for byte
        #expect(try t.settings(t.path("B")).value("vm_name") == "B")
        #expect(try t.consistent())
        #expect(try t.cli.run("vmmv", ["a", "b", "c"]).status == 2)
        #expect(try t.cli.run("vmmv", ["-t", t.root, "-t", t.root, "a"]).status == 2)
    }

    /// Across filesystems a move is a synced copy, then the source goes.
    @Test(.requires("qemu-img", "qemu-io")) func moveToAnotherFilesystemAndBack() throws {
        guard let t = try tree() else { return }
        let away = try directoryOnAnotherFilesystem(than: t.root)
        defer { try? FileManager.default.removeItem(atPath: away) }
        let before = t.listing()
        let r = try t.cli.run("vmmv", [t.path("B"), away])
        #expect(r.status == 0, "\(r.err)")
        let moved = away + "/B"
        #expect(!FileManager.default.fileExists(atPath: t.path("B")))
        #expect(t.children(t.path("R")) == [moved, t.path("D")].sorted(by: bytewiseLess))
        #expect(try t.backing(moved + "/C/hdd.qcow2") == moved + "/hdd.qcow2")
        #expect(t.content(of: moved + "/C/hdd.qcow2") == "C")
        var st = stat()
        #expect(stat(moved + "/hdd.qcow2", &st) == 0 && st.st_blocks * 512 < 8 << 20, "the copy is not sparse")
        #expect(try t.cli.run("vmmv", ["-q", moved, t.path("B")]).status == 0)
        #expect(t.listing() == before)
        #expect(t.content(of: t.path("C") + "/hdd.qcow2") == "C")
        #expect(try FileManager.default.contentsOfDirectory(atPath: away).isEmpty)
        #expect(try t.consistent())
    }

    /// vmrm -r of a tree that spans two filesystems is still one
    /// transaction: killed at any step, vmfix -b on both sides restores it.
    @Test(.requires("qemu-img", "qemu-io")) func removeATreeAcrossFilesystems() throws {
        guard let t = try tree() else { return }
        let away = try directoryOnAnotherFilesystem(than: t.root)
        defer { try? FileManager.default.removeItem(atPath: away) }
        #expect(try t.cli.run("vmmv", ["-q", t.path("D"), away + "/D"]).status == 0)
        func layout() -> [String] { t.listing() + ((try? FileManager.default.subpathsOfDirectory(atPath: away)) ?? []).sorted() }
        let before = layout()
        var step = 1
        while true {
            let r = try t.cli.run("vmrm", ["-r", "-y", t.path("R")], env: ["VMTOOLS_FAULT_KILL_AT_STEP": "\(step)"])
            if r.status != 9 {
                #expect(r.status == 0, "\(r.err)")
                break
            }
            // The journal is beside R; what was moved aside on the other filesystem waits for it.
            let found = try t.cli.run("vmfix", ["-bn", away])
            #expect(found.status == 0 || found.status == 3, "\(found.err)")
            let early = try t.cli.run("vmfix", ["-b", away])
            #expect(early.status == found.status, "vmfix -b: \(early.status) after -bn said \(found.status)\n\(early.err)")
            for dir in [t.root, away] {
                let fix = try t.cli.run("vmfix", ["-rA", dir])
                #expect(fix.status == 0 || fix.status == 3, "vmfix -rA \(dir): \(fix.status)\n\(fix.err)")
            }
            #expect(layout() == before, "killed at step \(step)")
            #expect(t.content(of: away + "/D/hdd.qcow2") == "D")
            #expect(try t.consistent())
            step += 1
            try #require(step < 100)
        }
        #expect(step > 3)
        #expect(!FileManager.default.fileExists(atPath: t.path("R")))
        #expect(try FileManager.default.contentsOfDirectory(atPath: away).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: t.root).isEmpty)
    }

    @Test(.requires("qemu-img", "qemu-io"), arguments: [false, true]) func mergeIntoTheParent(safe: Bool) throws {
        guard let t = try tree() else { return }
        // B has one child (C); R has two (B, D), so B merges, R cannot.
        #expect(try t.cli.run("vmmerge", [t.path("D")]).err.contains("only one child"))
        #expect(try t.cli.run("vmmerge", [t.path("R")]).err.contains("no parent"))
        let before = t.listing()
        #expect(try t.cli.run("vmmerge", ["-p", t.path("B")]).status == 1)
        #expect(t.listing() == before)  // nothing changed by the refusals
        try FileManager.default.removeItem(atPath: t.path("D"))
        #expect(try t.cli.run("vmfix", ["-p", t.path("R")]).status == 3)
        let r = try t.cli.run("vmmerge", (safe ? ["-s"] : []) + [t.path("B")])
        #expect(r.status == 0, "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: t.path("B")))
        #expect(t.content(of: t.path("R") + "/hdd.qcow2") == "B")
        #expect(t.children(t.path("R")) == [t.path("R") + "/C"])
        #expect(try t.backing(t.path("R") + "/C/hdd.qcow2") == t.path("R") + "/hdd.qcow2")
        #expect(t.content(of: t.path("R") + "/C/hdd.qcow2") == "C")
        #expect(t.leftovers().isEmpty)
        #expect(try t.consistent())
    }

    @Test(.requires("qemu-img", "qemu-io")) func mergeIntoChildren() throws {
        guard let t = try tree() else { return }
        // B into C: C holds B+C, moves up next to B, child of R.
        let r = try t.cli.run("vmmerge", ["-c", t.path("B")])
        #expect(r.status == 0, "\(r.err)")
        let c = t.path("R") + "/C"
        #expect(try t.settings(c).parent == t.path("R"))
        #expect(try t.backing(c + "/hdd.qcow2") == t.path("R") + "/hdd.qcow2")
        #expect(t.content(of: c + "/hdd.qcow2") == "C")
        // The root R into its two children: each becomes a root with a full disk.
        #expect(try t.cli.run("vmmerge", ["-c", t.path("R")]).status == 1)  // no terminal, no -y: cancelled
        let r2 = try t.cli.run("vmmerge", ["-c", "-y", t.path("R")])
        #expect(r2.status == 0, "\(r2.err)")
        for (home, data) in [(t.root + "/C", "C"), (t.path("D"), "D")] {
            #expect(try t.settings(home).parent == nil)
            #expect(try t.backing(home + "/hdd.qcow2") == nil)
            #expect(t.content(of: home + "/hdd.qcow2") == data)
        }
        #expect(!FileManager.default.fileExists(atPath: t.path("R")))
        #expect(try t.cli.run("vmmerge", ["-c", "-p"]).status == 2)
        #expect(try t.consistent())
    }

    /// vmfix(1) "Renamed-tree repair": a plain `mv` inside a tree,
    /// then `vmfix -rps` on its root.
    @Test(.requires("qemu-img", "qemu-io")) func fixRepairsATreeRenamedWithMv() throws {
        guard let t = try tree() else { return }
        try FileManager.default.moveItem(atPath: t.path("B"), toPath: t.path("R") + "/B renamed")
        #expect(try t.cli.run("vmfix", ["-ran", t.root]).status == 3)
        let r = try t.cli.run("vmfix", ["-rps", t.root])
        #expect(r.status == 3)
        #expect(r.err.contains("SOLVED"))
        let b = t.path("R") + "/B renamed"
        #expect(t.children(t.path("R")) == [t.path("D"), b])
        #expect(t.children(b) == [b + "/C"])
        #expect(try t.settings(b + "/C").parent == b)
        #expect(try t.settings(b).value("vm_storage_hdd1_backend") == b + "/hdd.qcow2")
        #expect(try t.backing(b + "/C/hdd.qcow2") == b + "/hdd.qcow2")
        #expect(t.content(of: b + "/C/hdd.qcow2") == "C")
        #expect(try t.consistent())
        // The renamed root itself: its child elsewhere is relinked too.
        try FileManager.default.moveItem(atPath: t.path("R"), toPath: t.root + "/R2")
        #expect(try t.cli.run("vmfix", ["-rps", t.root]).status == 3)
        #expect(try t.settings(t.path("D")).parent == t.root + "/R2")
        #expect(try t.backing(t.path("D") + "/hdd.qcow2") == t.root + "/R2/hdd.qcow2")
        #expect(t.content(of: t.root + "/R2/B renamed/C/hdd.qcow2") == "C")
        #expect(try t.consistent())
    }

    /// A plain `mv` of a parent, then `vmfix -p` on it alone (no -r): its
    /// children get their disks relinked with their parent lines, the one
    /// that moved along (its own paths and backing) and the one elsewhere.
    @Test(.requires("qemu-img", "qemu-io")) func fixRelinksTheChildrensDisksAfterMvOfTheParent() throws {
        guard let t = try tree() else { return }
        let r2 = t.root + "/R2"
        try FileManager.default.moveItem(atPath: t.path("R"), toPath: r2)
        let r = try t.cli.run("vmfix", ["-p", r2])
        #expect(r.status == 3, "\(r.err)")
        #expect(r.err.contains("SOLVED: \(r2)/B/hdd.qcow2: backing file now \(r2)/hdd.qcow2"), "\(r.err)")
        #expect(try t.settings(r2 + "/B").parent == r2)
        #expect(try t.settings(r2 + "/B").value("vm_storage_hdd1_backend") == r2 + "/B/hdd.qcow2")
        #expect(try t.backing(r2 + "/B/hdd.qcow2") == r2 + "/hdd.qcow2")
        #expect(try t.settings(t.path("D")).parent == r2)
        #expect(try t.backing(t.path("D") + "/hdd.qcow2") == r2 + "/hdd.qcow2")
        #expect(t.children(r2) == [t.path("D"), r2 + "/B"])
        // The grandchild, on its own, the same way.
        #expect(try t.cli.run("vmfix", ["-p", r2 + "/B/C"]).status == 3)
        #expect(try t.settings(r2 + "/B/C").value("vm_storage_hdd1_backend") == r2 + "/B/C/hdd.qcow2")
        #expect(try t.backing(r2 + "/B/C/hdd.qcow2") == r2 + "/B/hdd.qcow2")
        #expect(try t.cli.run("vmfix", ["-s", r2]).status == 3)  // R2's own path: -s
        for (home, data) in [(r2 + "/B", "B"), (r2 + "/B/C", "C"), (t.path("D"), "D")] {
            #expect(t.content(of: home + "/hdd.qcow2") == data, "\(home)")
        }
        #expect(try t.consistent())
    }

    @Test(.requires("qemu-img", "qemu-io")) func fixLocksAndRunTimeFiles() throws {
        guard let t = try tree() else { return }
        let cli = t.cli
        #expect(try cli.run("vmfix", [t.root]).status == 2)
        #expect(try cli.run("vmfix", ["-p", t.root]).status == 1)  // not a VM home
        // A stale lock of the original tool (a bare path) and one of a dead vmtools process.
        try FileManager.default.createSymbolicLink(atPath: t.path("B") + "/.vm.settings.lock", withDestinationPath: t.path("B"))
        try FileManager.default.createSymbolicLink(atPath: t.path("C") + "/.vm.settings.lock",
                                                   withDestinationPath: t.path("C") + "#999999999@\(FileSystem.hostName())")
        // A live lock, held by this test process: left alone.
        let global = try resolver(cli.scratch).loadGlobal()
        let live = try HomeLock.acquire(t.path("D"), global: global)
        defer { live.release() }
        let n = try cli.run("vmfix", ["-rln", t.root])
        #expect(n.status == 3)
        #expect(n.err.contains("other checks"))
        let r = try cli.run("vmfix", ["-rl", t.root])
        #expect(r.status == 3, "\(r.err)")
        #expect(!FileSystem.lexists(t.path("B") + "/.vm.settings.lock") && !FileSystem.lexists(t.path("C") + "/.vm.settings.lock"))
        #expect(live.isHeld)
        #expect(r.err.contains("\(t.path("D"))/.vm.settings.lock: held by vmtools process \(getpid())"))
        // Stale run-time files are cosmetic (-d, in -A only).
        _ = try cli.scratch.write("tree/R/qemu.pid", "999999999\n")
        #expect(try cli.run("vmfix", ["-a", t.path("R")]).status == 0)
        #expect(try cli.run("vmfix", ["-A", t.path("R")]).status == 3)
        #expect(!FileManager.default.fileExists(atPath: t.path("R") + "/qemu.pid"))
        #expect(try cli.run("vmfix", ["-A", t.path("R")]).status == 0)
    }

    /// A disk a QEMU writes is never copied: QEMU's own image lock tells.
    @Test(.requires("qemu-img", "qemu-io")) func aDiskInUseIsNotCopied() throws {
        guard let t = try tree() else { return }
        let image = t.path("C") + "/hdd.qcow2"
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/qemu-io")
        holder.arguments = ["-c", "sleep 60000", image]
        holder.standardOutput = FileHandle.nullDevice
        try holder.run()
        defer {
            holder.terminate()
            holder.waitUntilExit()
        }
        #expect(waitUntil(20) { QemuImg.isInUse(image, environment: [:]) })
        let r = try t.cli.run("vmcp", [t.path("C"), t.root + "/busy"])
        #expect(r.status == 1)
        #expect(r.err.contains("is being written by a running QEMU"))
        #expect(!FileManager.default.fileExists(atPath: t.root + "/busy"))
        holder.terminate()
        holder.waitUntilExit()
        #expect(!QemuImg.isInUse(image, environment: [:]))
        #expect(try t.cli.run("vmcp", ["-q", t.path("C"), t.root + "/busy"]).status == 0)
    }

    /// The backup directory of a command still running is not touched by
    /// `vmfix -b`; once its owner is gone, its journal is replayed.
    @Test(.requires("qemu-img", "qemu-io")) func fixLeavesALiveBackupAlone() throws {
        guard let t = try tree() else { return }
        let tx = Transaction(anchor: t.root)
        let made = t.root + "/made-by-a-running-command"
        try tx.makeDirectory(made)
        let backup = try #require(tx.backupDirectory)
        let r = try t.cli.run("vmfix", ["-b", t.root])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("still running"))
        #expect(FileManager.default.fileExists(atPath: backup) && FileManager.default.fileExists(atPath: made))
        tx.commit()
        #expect(!FileManager.default.fileExists(atPath: backup) && FileManager.default.fileExists(atPath: made))
    }

    @Test(.requires("qemu-img", "qemu-io")) func strangeNamesWorkEverywhere() throws {
        guard let t = try tree() else { return }
        let names = ["with space", "tab\there", "quote'd", "dq\"x", "star*", "what?", "[br]", "$HOME", "back\\slash",
                     "com,ma", "ünïcödé", "-n", "--", "-dash", ".dot"]
        try FileManager.default.createDirectory(atPath: t.root + "/names", withIntermediateDirectories: true)
        for name in names {
            let copy = t.root + "/names/" + name
            var r = try t.cli.run("vmcp", ["-q", "--", t.path("C"), copy])
            #expect(r.status == 0, "vmcp \(name): \(r.err)")
            r = try t.cli.run("vmfork", ["-q", "--", copy, copy + "/child"])
            #expect(r.status == 0, "vmfork \(name): \(r.err)")
            r = try t.cli.run("vmmv", ["-q", "--", copy, copy + " moved"])
            #expect(r.status == 0, "vmmv \(name): \(r.err)")
            #expect(try t.settings(copy + " moved/child").parent == copy + " moved")
            r = try t.cli.run("vmfix", ["-rpsn", "--", copy + " moved"])
            #expect(r.status == 0, "vmfix \(name): \(r.err)")
            r = try t.cli.run("vmmerge", ["-q", "--", copy + " moved/child"])
            #expect(r.status == 0, "vmmerge \(name): \(r.err)")
            #expect(t.content(of: copy + " moved/hdd.qcow2") == "C")
            r = try t.cli.run("vmrm", ["-q", "-y", "--", copy + " moved"])
            #expect(r.status == 0, "vmrm \(name): \(r.err)")
            #expect(!FileManager.default.fileExists(atPath: copy + " moved"))
        }
        #expect(try t.cli.run("vmcp", ["--", t.path("C"), t.root + "/new\nline"]).err.contains("newline"))
        #expect(try t.cli.run("vmmv", ["--", t.path("C"), t.root + "/new\nline"]).err.contains("newline"))
        #expect(t.leftovers().isEmpty)
        #expect(try t.consistent())
    }

    /// Ctrl-C during a long copy: the partial copy goes, the exit status is 1.
    @Test(.requires("qemu-img")) func interruptedCopyLeavesNothing() throws {
        guard requireTool("qemu-img") != nil else { return }
        let cli = try CLI(Scratch())
        // 1 GiB of data (not holes), so the copy takes a while.
        try bigVM(cli, mebibytes: 1024)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: cli.bin + "/vmcp")
        p.arguments = [cli.scratch.url("big"), cli.scratch.url("copy")]
        p.environment = cli.environment
        p.standardError = FileHandle.nullDevice
        try p.run()
        let started = waitUntil(30) { FileManager.default.fileExists(atPath: cli.scratch.url("copy/disk.img")) || !p.isRunning }
        #expect(started)
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        if p.terminationStatus == 0 {
            Issue.record("the copy finished before the interrupt arrived; nothing was tested")
            return
        }
        #expect(p.terminationStatus == 1)
        #expect(!FileManager.default.fileExists(atPath: cli.scratch.url("copy")))
        #expect(try FileManager.default.contentsOfDirectory(atPath: cli.scratch.path).filter { $0.hasPrefix("vmtools-backup.") }.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: cli.scratch.url("big")).sorted() == ["disk.img", "vm.settings"])
    }
    /// A full filesystem: the error names the file that could not be
    /// written, and the partial copy goes.
    @Test(.requires("qemu-img"), .requiresRoot) func outOfSpaceNamesTheFile() throws {
        guard requireTool("qemu-img") != nil else { return }
        let cli = try CLI(Scratch())
        try bigVM(cli, mebibytes: 16)
        let small = cli.scratch.url("small")
        try cli.scratch.mkdir("small")
        let m = try Subprocess("/bin/mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", small]).run()
        guard m.status == 0 else {
            let why = "cannot mount a small tmpfs (\(m.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))): needs root"
            // `.requiresRoot` skips this test where it cannot mount, outside CI.
            Issue.record(Comment(rawValue: why))
            return
        }
        defer { _ = try? Subprocess("/bin/umount", [small]).run() }
        for (command, target) in [("vmcp", small + "/copy"), ("vmmv", small + "/moved")] {
            let r = try cli.run(command, [cli.scratch.url("big"), target])
            #expect(r.status == 1)
            #expect(r.err.contains("\(target)/disk.img: cannot") && r.err.contains("o space left on device"), "\(command): \(r.err)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: small).isEmpty, "\(command) left files behind")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: cli.scratch.url("big")).sorted() == ["disk.img", "vm.settings"])
    }

    /// vmmv(1) refuses `vmmv SRC SRC`; vmcp does too, instead of
    /// nesting a copy inside its own source.
    @Test(.requires("qemu-img", "qemu-io")) func copyOntoItselfIsRefused() throws {
        guard let t = try tree() else { return }
        for dest in [t.path("C"), t.path("C") + "/", t.path("C") + "/."] {
            let r = try t.cli.run("vmcp", [t.path("C"), dest])
            #expect(r.status == 1 && r.err.contains("source and destination are the same"), "\(dest): \(r.err)")
            let mv = try t.cli.run("vmmv", [t.path("C"), dest])
            #expect(mv.status == 1, "\(dest): \(mv.err)")
        }
        #expect(!FileManager.default.fileExists(atPath: t.path("C") + "/C"))
        #expect(try t.consistent())
    }

    /// `-M` of a module that exists nowhere is the same error as `-m` of it.
    @Test(.requires("qemu-img", "qemu-io")) func unknownModulesToRemoveAreAnError() throws {
        guard let t = try tree() else { return }
        for flag in ["-m", "-M"] {
            let r = try t.cli.run("vmcp", [flag, "nosuch", t.path("C"), t.root + "/copy"])
            #expect(r.status == 1 && r.err.contains("module 'nosuch' not found"), "\(flag): \(r.err)")
            #expect(!FileManager.default.fileExists(atPath: t.root + "/copy"))
        }
        #expect(try t.cli.run("vmcp", ["-q", "-M", "networking_iface_mac", t.path("C"), t.root + "/copy"]).status == 0)
        let mac = try t.settings(t.path("C")).value("vm_networking_iface1_mac")
        let copied = try t.settings(t.root + "/copy").value("vm_networking_iface1_mac")
        #expect(mac != nil && copied == mac, "-M: the MAC is kept")
    }

    /// Backup directories are `vmtools-backup.` and ten random characters
    /// (vmtools.conf(5) cfg_file_tmpdir), not four literal X and six.
    @Test(.requires("qemu-img", "qemu-io")) func backupDirectoriesHaveRandomNames() throws {
        guard let t = try tree() else { return }
        var names: Set<String> = []
        for _ in 0..<3 {
            let r = try t.cli.run("vmfork", [t.path("C"), t.root + "/fork"], env: ["VMTOOLS_FAULT_KILL_AT_STEP": "1"])
            #expect(r.status == 9, "not killed at step 1: \(r.status) \(r.err)")
            for entry in try FileManager.default.contentsOfDirectory(atPath: t.root) where entry.hasPrefix("vmtools-backup.") {
                let suffix = entry.dropFirst("vmtools-backup.".count)
                #expect(suffix.count == 10 && suffix.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) } && !suffix.contains("XXXX"), "\(entry)")
                names.insert(entry)
            }
            #expect(try t.cli.run("vmfix", ["-rA", t.root]).status == 3)
        }
        #expect(names.count == 3)
        #expect(try t.consistent())
    }
    /// A boot's serial log (and pid file) belongs to that VM's boot: never
    /// copied by vmcp, vmfork or a move to another filesystem (vmmv(1));
    /// a rename keeps it; `vmfix -d` lists it as a work file.
    @Test(.requires("qemu-img", "qemu-io")) func serialLogsStayWithTheirVM() throws {
        guard let t = try tree() else { return }
        let away = try directoryOnAnotherFilesystem(than: t.root)
        defer { try? FileManager.default.removeItem(atPath: away) }
        for name in Tree.names {
            try Data("boot of \(name)\n".utf8).write(to: URL(fileURLWithPath: t.path(name) + "/serial.log"))
        }
        try Data("999999999\n".utf8).write(to: URL(fileURLWithPath: t.path("C") + "/qemu.pid"))
        #expect(try t.cli.run("vmcp", ["-q", t.path("C"), t.root + "/copy"]).status == 0)
        #expect(try t.cli.run("vmcp", ["-q", "-a", t.path("C"), t.root + "/alone"]).status == 0)
        #expect(try t.cli.run("vmfork", ["-q", t.path("C"), t.root + "/fork"]).status == 0)
        #expect(try t.cli.run("vmcp", ["-q", "-R", "-y", t.path("R"), t.root + "/Rtree"]).status == 0)
        #expect(try t.cli.run("vmcp", ["-q", "-r", t.path("R"), t.root + "/Rdirs"]).status == 0)
        let made = ["copy", "alone", "fork"].map { t.root + "/" + $0 } + t.homes(below: t.root + "/Rtree") + t.homes(below: t.root + "/Rdirs")
        #expect(made.count == 3 + 6 + 3)  // -R also takes copy (a child of B) and fork
        for home in made {
            #expect(!FileManager.default.fileExists(atPath: home + "/serial.log") && !FileManager.default.fileExists(atPath: home + "/qemu.pid"), "\(home)")
        }
        // Another filesystem: not carried, and gone with the source.
        #expect(try t.cli.run("vmmv", ["-q", t.path("B"), away]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: away + "/B/serial.log") && !FileManager.default.fileExists(atPath: away + "/B/C/serial.log"))
        #expect(!FileManager.default.fileExists(atPath: away + "/B/C/qemu.pid"))
        #expect(FileManager.default.fileExists(atPath: away + "/B/C/vm.settings"))
        #expect(!FileManager.default.fileExists(atPath: t.path("B")))
        // A rename keeps the VM's own log.
        #expect(try t.cli.run("vmmv", ["-q", t.path("D"), t.root + "/D2"]).status == 0)
        #expect(try String(contentsOfFile: t.root + "/D2/serial.log", encoding: .utf8) == "boot of D\n")
        // vmfix -d: a work file, listed and (without -n) removed.
        let n = try t.cli.run("vmfix", ["-rdn", t.root])
        #expect(n.status == 3 && n.err.contains("    \(t.root)/D2/serial.log") && n.err.contains("    \(t.path("R"))/serial.log"), "\(n.err)")
        #expect(try t.cli.run("vmfix", ["-rd", t.root]).status == 3)
        #expect(!FileManager.default.fileExists(atPath: t.root + "/D2/serial.log"))
        #expect(try t.cli.run("vmfix", ["-rd", t.root]).status == 0)
        #expect(try t.consistent())
    }
}
