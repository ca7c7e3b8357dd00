import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// A VM directory from elsewhere may hold a symbolic link at a name vmtools
/// or a helper writes (vmtools(7), SECURITY): every such name is refused,
/// naming it, before anything is written or started, and nothing outside
/// the home is changed or created. The names come from the list the product
/// itself checks (`VMFileNames.written`), so a name added there is tested here.
@Suite(.serialized) struct PlantedLinkTests {
    /// What a planted link points at, outside the home.
    enum Target: CaseIterable { case file, directory, dangling }

    /// Every name a start writes in a home, and passt's numbered files.
    static func plantedNames(_ names: VMFileNames) -> [String] {
        names.written + ["passt-nd1.sock", "passt-nd1.log", "passt-nd1.forwards"]
    }

    /// Plants a link at `home/name` to an outside file, directory or
    /// nothing; returns the target.
    static func plant(_ s: Scratch, _ home: String, _ name: String, _ target: Target, tag: String) throws -> String {
        let outside = s.url("outside/\(tag)")
        switch target {
        case .file: try s.write("outside/\(tag)", "SECRET-\(tag)\nline two\n")
        case .directory: try s.mkdir("outside/\(tag)")
        case .dangling: break
        }
        let link = home + "/" + name
        try? FileManager.default.moveItem(atPath: link, toPath: s.url("aside"))
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: outside)
        return outside
    }

    /// The target as it was planted: same content, an empty directory, or still missing.
    static func untouched(_ s: Scratch, _ target: Target, tag: String) -> Bool {
        let outside = s.url("outside/\(tag)")
        switch target {
        case .file: return textIfPresent(outside) == "SECRET-\(tag)\nline two\n"
        case .directory: return (try? FileManager.default.contentsOfDirectory(atPath: outside)) == []
        case .dangling:
            var st = stat()
            return lstat(outside, &st) != 0
        }
    }

    /// The link goes, and what was there comes back.
    static func unplant(_ s: Scratch, _ home: String, _ name: String) throws {
        try FileManager.default.removeItem(atPath: home + "/" + name)
        if s.exists("aside") { try FileManager.default.moveItem(atPath: s.url("aside"), toPath: home + "/" + name) }
    }

    /// A link at any name of `VMFileNames.written` (and passt's): vmup
    /// refuses with one line naming it, QEMU never starts, no content of
    /// the target is quoted, and the target is neither written nor created.
    @Test(.requiresGuest) func aLinkAtEveryNameAStartWritesIsRefused() throws {
        guard let lab = try BootLab.guest() else { return }
        let home = try lab.makeVM("vm")
        let names = try resolver(lab.s).loadGlobal().fileNames
        let planted = Self.plantedNames(names)
        #expect(planted.contains("serial.log") && planted.contains("firmware-vars.qcow2") && planted.contains("tpm") && planted.contains("tftp"))
        #expect(!planted.contains(names.lock), "the lock is a link of its own")
        for (i, name) in planted.enumerated() {
            for target in Target.allCases {
                let tag = "\(i)-\(target)"
                let outside = try Self.plant(lab.s, home, name, target, tag: tag)
                let dry = try lab.cli.run("vmup", ["-n", "--", home])
                #expect(dry.status == 1 && dry.err.contains("\(home)/\(name)") && dry.err.contains("symbolic link"), "vmup -n, \(name) → \(target): \(dry.err)")
                let up = try lab.cli.run("vmup", ["--", home])
                let lines = up.err.split(separator: "\n")
                #expect(up.status == 1, "\(name) → \(target): \(up.err)")
                #expect(lines.count == 1 && up.err.contains("\(home)/\(name)") && up.err.contains("symbolic link"), "\(name) → \(target): \(up.err)")
                #expect(!up.err.contains("SECRET") && !up.out.contains("SECRET"), "\(name): \(up.err)")
                #expect(!up.err.contains(outside), "\(name): \(up.err)")
                #expect(Self.untouched(lab.s, target, tag: tag), "\(name) → \(target): the outside target changed")
                #expect(lab.pid(home) == nil, "\(name) → \(target): QEMU started")
                if lab.pid(home) != nil { _ = try lab.cli.run("vmdown", ["-k", "--", home]) }
                try Self.unplant(lab.s, home, name)
            }
        }
        // Unplanted, the same VM starts: the refusals were the links'.
        let up = try lab.up(home)
        #expect(up.status == 0, "\(up.err)")
        #expect(try lab.cli.run("vmdown", ["-k", "--", home]).status == 0)
    }

    /// Paths the plan names beyond the fixed names: the ISO packed from a
    /// CD-ROM directory, the preseed file in `tftp/`, a disk a createsize
    /// makes; and a `tftp/` or `tpm/` that is a file.
    @Test(.requiresGuest) func aLinkAtAPlannedPathIsRefused() throws {
        guard let lab = try BootLab.guest() else { return }
        // Inside the home: a VM's own settings hand the guest nothing outside its tree (vm.settings(5), HOST PATHS).
        let home = try lab.makeVM("vm", """
        vm_storage_cdrom2_enable=yes
        vm_storage_cdrom2_backend=\(lab.s.url("vm/cd"))
        vm_install_preseed=\(lab.s.url("vm/preseed.cfg"))
        vm_storage_hdd1_enable=yes
        vm_storage_hdd1_backend=new.qcow2
        vm_storage_hdd1_createsize=16M
        """)
        try lab.s.write("vm/cd/readme.txt", "hello\n")
        try lab.s.write("vm/preseed.cfg", "d-i debian-installer/locale string en_US\n")
        try lab.s.mkdir("vm/tftp")
        for (i, name) in [".vmtools-cd.iso", "tftp/preseed.cfg"].enumerated() {
            for target in Target.allCases {
                let tag = "p\(i)-\(target)"
                _ = try Self.plant(lab.s, home, name, target, tag: tag)
                let up = try lab.cli.run("vmup", ["--", home])
                #expect(up.status == 1 && up.err.split(separator: "\n").count == 1 && up.err.contains("\(home)/\(name)"), "\(name) → \(target): \(up.err)")
                #expect(Self.untouched(lab.s, target, tag: tag), "\(name) → \(target): the outside target changed")
                #expect(lab.pid(home) == nil && !lab.s.exists("vm/new.qcow2"), "\(name) → \(target): the start went on")
                if lab.pid(home) != nil { _ = try lab.cli.run("vmdown", ["-k", "--", home]) }
                try Self.unplant(lab.s, home, name)
            }
        }
        for name in ["tftp", "tpm"] {
            FileSystem.removeTree(home + "/" + name)
            try lab.s.write("vm/\(name)", "a file\n")
            let up = try lab.cli.run("vmup", ["--", home])
            #expect(up.status == 1 && up.err.contains("\(home)/\(name)") && up.err.contains("not a directory"), "\(up.err)")
            try FileManager.default.removeItem(atPath: home + "/" + name)
        }
        #expect(!lab.s.exists("vm/new.qcow2") && !lab.s.exists("vm/.vmtools-cd.iso"))
    }

    /// A home, or a `tpm/` in it, owned by another user is refused: its
    /// owner could plant a link after the check, before a helper opens it.
    @Test(.requiresGuest, .requiresRoot) func aDirectoryOfAnotherUserIsRefused() throws {
        guard let lab = try BootLab.guest() else { return }
        let home = try lab.makeVM("vm")
        try lab.s.mkdir("vm/tpm")
        for dir in [home + "/tpm", home] {
            #expect(chown(dir, 65534, 65534) == 0)
            let up = try lab.cli.run("vmup", ["--", home])
            #expect(up.status == 1 && up.err.contains("\(dir): refusing to write into a directory owned by another user (uid 65534)"), "\(up.err)")
            #expect(lab.pid(home) == nil)
            if lab.pid(home) != nil { _ = try lab.cli.run("vmdown", ["-k", "--", home]) }
            #expect(chown(dir, geteuid(), getegid()) == 0)
        }
    }

    /// The write sites themselves do not follow a link, whatever checked
    /// before them: qemu-img's new disk, the ISO maker's output, a seed
    /// volume, the TFTP directory, the serial log, an atomic write.
    @Test(.requires("qemu-img", "xorriso")) func theWritesThemselvesNeverFollowALink() throws {
        let s = Scratch()
        try s.mkdir("home")
        let home = s.url("home")
        try s.write("cd/readme.txt", "hello\n")
        func dangling(_ name: String) throws -> String {
            try FileManager.default.createSymbolicLink(atPath: home + "/" + name, withDestinationPath: s.url("outside-\(name)"))
            return s.url("outside-\(name)")
        }
        func refused(_ name: String, _ body: () throws -> Void) {
            let e = expectError(body)
            #expect(e?.subject == home + "/" + name && e?.message.contains("symbolic link") == true, "\(name): \(String(describing: e))")
        }

        let disk = try dangling("disk.qcow2")
        refused("disk.qcow2") { try QemuImg.createDisk(home + "/disk.qcow2", size: "1M", environment: ProcessInfo.processInfo.environment) }
        #expect(!FileManager.default.fileExists(atPath: disk))

        let serial = try dangling("serial.log")
        refused("serial.log") { try FileSystem.createPrivate(home + "/serial.log") }
        #expect(!FileManager.default.fileExists(atPath: serial))

        let tftp = try dangling("tftp")
        let preseed = SeedVolume(path: home + "/tftp", label: "TFTP", files: [.init("preseed.cfg", "x\n")], isDirectory: true)
        refused("tftp") { try preseed.build(environment: ProcessInfo.processInfo.environment) }
        #expect(!FileManager.default.fileExists(atPath: tftp))

        // A seed volume's digest is not read through a link, nor waited for on a FIFO.
        #expect(mkfifo(home + "/oemdrv.iso", 0o600) == 0)
        #expect(SeedVolume.recordedDigest(home + "/oemdrv.iso") == nil)
        try FileManager.default.removeItem(atPath: home + "/oemdrv.iso")

        // Renamed over a link, which goes; its target stays as it was.
        try s.write("outside-secret", "SECRET\n")
        for name in ["cidata.iso", ".vmtools-cd.iso", "vm.settings"] {
            try FileManager.default.createSymbolicLink(atPath: home + "/" + name, withDestinationPath: s.url("outside-secret"))
        }
        let env = ProcessInfo.processInfo.environment
        try SeedVolume(path: home + "/cidata.iso", label: "cidata", files: [.init("meta-data", "x\n")]).build(environment: env)
        try Preparation.makeISO(home + "/.vmtools-cd.iso", from: s.url("cd"), environment: env)
        try FileSystem.writeAtomically(Array("vm_name=x\n".utf8), to: home + "/vm.settings")
        for name in ["cidata.iso", ".vmtools-cd.iso", "vm.settings"] {
            #expect(!FileSystem.isSymlink(home + "/" + name) && FileSystem.isRegularFile(home + "/" + name), "\(name)")
        }
        #expect(textIfPresent(s.url("outside-secret")) == "SECRET\n")
        #expect(FileSystem.mode(home + "/cidata.iso") == 0o600 && FileSystem.mode(home + "/.vmtools-cd.iso") == 0o600)
        // No temporary file is left, and vmfix -d would know one.
        #expect(try FileSystem.listDirectory(home).filter { $0.contains(".tmp.") } == [])
        #expect(FileSystem.isTemporaryName(".cidata.iso.tmp.Ab3xYz") && !FileSystem.isTemporaryName("cidata.iso"))
        #expect(try resolver(s).loadGlobal().fileNames.isWork(".firmware-vars.qcow2.tmp.q1W2e3"))
    }

    /// The temporary files the writes make aside are debris after a crash:
    /// vmfix -d removes them; look-alikes stay.
    @Test func vmfixRemovesTemporaryFilesACrashLeft() throws {
        let s = Scratch()
        let cli = try CLI(s)
        try s.write("vm/vm.settings", "vm_name=t\n")
        let debris = [".cidata.iso.tmp.Ab3xYz", ".firmware-vars.qcow2.tmp.q1W2e3", ".vmtools-cd.iso.tmp.000000", ".vm.settings.tmp.ZZZZZZ"]
        let kept = ["cidata.iso.tmp.Ab3xYz", ".cidata.iso.tmp.Ab3x", ".cidata.iso.tmp.Ab3xYz.old", ".tmp.Ab3xYz", "notes.tmp.abcdef"]
        for f in debris + kept { try s.write("vm/\(f)", "x") }
        let r = try cli.run("vmfix", ["-d", s.url("vm")])
        #expect(r.err.contains(s.url("vm/.cidata.iso.tmp.Ab3xYz")), "\(r.err)")
        #expect(debris.allSatisfy { !s.exists("vm/\($0)") } && kept.allSatisfy { s.exists("vm/\($0)") }, "\((try? FileSystem.listDirectory(s.url("vm"))) ?? [])")
    }

    /// A `vm.settings` or `childs.lst` that is a link to a secret file is
    /// refused unread: no line of it reaches the error (every command that
    /// reads the VM, not only vmup).
    @Test func aLinkedSettingsFileIsRefusedUnquoted() throws {
        let s = Scratch()
        let cli = try CLI(s)
        try s.write("id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n")
        try s.mkdir("vm")
        try FileManager.default.createSymbolicLink(atPath: s.url("vm/vm.settings"), withDestinationPath: s.url("id_ed25519"))
        for (command, args) in [("vmup", ["-n"]), ("vminfo", []), ("vmup", [])] {
            let r = try cli.run(command, args + ["--", s.url("vm")])
            #expect(r.status != 0, "\(command): \(r.out)")
            #expect(r.err.contains(s.url("vm/vm.settings")) && r.err.contains("symbolic link"), "\(command): \(r.err)")
            #expect(!r.err.contains("OPENSSH") && !r.err.contains("b3Bl") && !r.out.contains("OPENSSH"), "\(command): \(r.err)")
        }
        try FileManager.default.removeItem(atPath: s.url("vm/vm.settings"))
        try s.write("vm/vm.settings", "vm_name=vm\n")
        try FileManager.default.createSymbolicLink(atPath: s.url("vm/childs.lst"), withDestinationPath: s.url("id_ed25519"))
        let r = try cli.run("vmup", ["-n", "--", s.url("vm")])
        #expect(r.status != 0 && r.err.contains(s.url("vm/childs.lst")), "\(r.err)")
        #expect(!r.err.contains("OPENSSH") && !r.err.contains("b3Bl"), "\(r.err)")
    }
}
