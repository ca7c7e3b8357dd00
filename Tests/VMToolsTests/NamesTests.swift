import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// Issue 10 A5: every command works with every name of this list, as a VM
/// directory, as `.iso`/`.qcow2`/`.ova` file names and as file names inside
/// an `.ova`. Names that look like options are given after `--`.
/// Each name goes through fork, copy, move (also to another filesystem),
/// merge and vmrm (fast, one test case each), and through an `.ova` import
/// and a real boot (one test that starts them five at a time), with
/// `vmfix -ran` clean after every step.
@Suite struct NamesTests {
    static let names: [String] = [
        "foo", "[f]oo", ".foo", "foobar.iso", "foobar.vmdk", "foobar.ova", "*", ">", "\\", "$$",
        #"^"'`({[\[^$,+?)}];\\\n#%$"#,  // a literal backslash-n, not a newline
        "foo,,bar", "foo bar", "foo\tbar baz?qux", "foo?bar baz\tqux", "fóò⁄ƀâř", "-", "--", "-n", " ",
    ]

    /// `vmfix -ran` on `dir`: 0 when every link and disk is consistent.
    static func expectConsistent(_ cli: CLI, _ dir: String, after step: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let r = try cli.run("vmfix", ["-ran", "--", dir])
        #expect(r.status == 0, "after \(step): vmfix -ran: \(r.status)\n\(r.err)", sourceLocation: sourceLocation)
        let backups = (FileManager.default.enumerator(atPath: dir)?.allObjects as? [String] ?? []).filter {
            $0.contains("vmtools-backup.") || $0.hasSuffix(".vm.settings.lock") || $0.contains(".vmtools-import.")
        }
        #expect(backups.isEmpty, "after \(step): leftovers \(backups)", sourceLocation: sourceLocation)
    }

    /// vmcreate, vmfork, vmcp, vmmv, vmmerge, vmrm with the name as a relative operand.
    @Test(.requires("qemu-img"), arguments: names) func treeCommands(name: String) throws {
        guard requireTool("qemu-img") != nil else { return }
        let cli = try CLI(Scratch())
        let vms = cli.scratch.url("vms")
        for dir in ["vms/forks", "vms/copies", "vms/moved"] { try cli.scratch.mkdir(dir) }
        func run(_ command: String, _ args: [String]) throws {
            let r = try cli.run(command, ["-q"] + args, cwd: vms)
            #expect(r.status == 0, "\(command) \(args): \(r.err)")
            try Self.expectConsistent(cli, vms, after: "\(command) \(args)")
        }
        try run("vmcreate", ["-n", "-y", "-o", "vm_storage_hdd1_createsize=8M", "--", name])
        let home = vms + "/" + name
        #expect(try VMSettingsFile.read(home + "/vm.settings").value("vm_name") == name)
        try run("vmfork", ["--", name, "forks/" + name])
        #expect(try VMSettingsFile.read(vms + "/forks/" + name + "/vm.settings").parent == home)
        try run("vmcp", ["--", name, "copies"])
        #expect(try VMSettingsFile.read(vms + "/copies/" + name + "/vm.settings").value("vm_storage_hdd1_backend") == vms + "/copies/" + name + "/hdd.qcow2")
        // The parent moves: its fork follows; then the copy is renamed to the name.
        try run("vmmv", ["--", name, "moved"])
        let moved = vms + "/moved/" + name
        #expect(try VMSettingsFile.read(vms + "/forks/" + name + "/vm.settings").parent == moved)
        #expect(try QemuImg.backing(of: vms + "/forks/" + name + "/hdd.qcow2", environment: cli.environment)?.path == moved + "/hdd.qcow2")
        // The copy goes to another filesystem and comes back under the name.
        let away = try #require(["/dev/shm"].first { FileSystem.device($0) != nil && FileSystem.device($0) != FileSystem.device(vms) })
            + "/vmtools-names-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: away, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: away) }
        try run("vmmv", ["--", "copies/" + name, away])
        try Self.expectConsistent(cli, away, after: "vmmv to \(away)")
        try run("vmmv", ["--", away + "/" + name, name])
        #expect(try FileManager.default.contentsOfDirectory(atPath: away).isEmpty)
        #expect(FileManager.default.fileExists(atPath: home + "/hdd.qcow2"))
        try run("vmmerge", ["--", "forks/" + name])
        #expect(!FileManager.default.fileExists(atPath: vms + "/forks/" + name))
        try run("vmrm", ["-y", "--", name])
        try run("vmrm", ["-y", "--", "moved/" + name])
        #expect(!FileManager.default.fileExists(atPath: home) && !FileManager.default.fileExists(atPath: moved))
        #expect(!FileManager.default.fileExists(atPath: vms + "/forks/" + name))
    }

    /// Guest.ova repacked as `<name>.ova` holding `<name>.ovf` and `<name>.vmdk`.
    static func repackOVA(_ name: String, in dir: String, scratch: Scratch) throws -> String {
        let work = dir + "/.repack"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let x = try Subprocess("/bin/tar", ["-xf", Guest.ova, "-C", work]).run()
        try #require(x.status == 0, "\(x.stderrText)")
        try FileManager.default.moveItem(atPath: work + "/guest-disk1.vmdk", toPath: work + "/" + name + ".vmdk")
        let ovf = try String(contentsOfFile: work + "/guest.ovf", encoding: .utf8)
        let href = name.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "\"", with: "&quot;")
            .replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        try Data(ovf.replacingOccurrences(of: "guest-disk1.vmdk", with: href + ".vmdk").utf8).write(to: URL(fileURLWithPath: work + "/" + name + ".ovf"))
        try FileManager.default.removeItem(atPath: work + "/guest.ovf")
        let ova = dir + "/" + name + ".ova"
        // Members by a file list (--null: any byte but NUL), never as tar options or patterns.
        let list = work + "/../.members"
        try Data((name + ".ovf\0" + name + ".vmdk\0").utf8).write(to: URL(fileURLWithPath: list))
        defer { try? FileManager.default.removeItem(atPath: list) }
        let c = try Subprocess("/bin/tar", ["--create", "--force-local", "--file", ova, "--directory", work, "--null", "--no-unquote",
                                            "--verbatim-files-from", "--files-from", list]).run()
        try #require(c.status == 0, "\(c.stderrText)")
        return ova
    }

    /// Each name: an `.ova` and an `.iso` of that name are the disks of a VM
    /// of that name (the `.ova` imported by vmcreate into `<name>.qcow2`),
    /// booted by vmup from one or the other, five at a time; the guest
    /// reaches READY, vmps sees it, vmdown stops it, vmrm deletes it.
    @Test(.requiresGuest) func everyNameBoots() throws {
        guard let lab = try BootLab.guest() else { return }
        let cli = lab.cli
        // The serial log may be opt-in (vm_serial_log): asked for in the configuration.
        let conf = try lab.s.read("etc/vmtools.conf")
        try lab.s.write("etc/vmtools.conf", conf + "vm_serial_log=yes\n")
        try lab.s.mkdir("media")
        try lab.s.mkdir("vms")
        let vms = lab.s.url("vms")
        var homes: [String] = []
        for (i, name) in Self.names.enumerated() {
            let ova = try Self.repackOVA(name, in: lab.s.url("media"), scratch: lab.s)
            let iso = lab.s.url("media/" + name + ".iso")
            if link(Guest.iso, iso) != 0 { try FileManager.default.copyItem(atPath: Guest.iso, toPath: iso) }
            let bootOrder = i % 2 == 0 ? "c" : "d"
            let r = try cli.run("vmcreate", ["-q", "-n", "-y", "-o", "vm_storage_hdd1_backend=" + ova, "-o", "vm_storage_cdrom1_enable=yes",
                                             "-o", "vm_storage_cdrom1_backend=" + iso, "-o", "vm_boot_order=" + bootOrder,
                                             "-o", "vm_networking_iface1_enable=no", "--", name], cwd: vms)
            try #require(r.status == 0, "vmcreate \(name): \(r.err)")
            let home = vms + "/" + name
            let disk = try VMSettingsFile.read(home + "/vm.settings").value("vm_storage_hdd1_backend")
            #expect(disk == home + "/" + name + ".qcow2", "\(name): the .ova's disk")
            #expect(ImageFormat.detect(home + "/" + name + ".qcow2") == "qcow2")
            homes.append(home)
        }
        try Self.expectConsistent(cli, vms, after: "the imports")
        // Bare `.iso` and `.qcow2` files of each name: the command vmup would run.
        for name in Self.names {
            let qcow2 = lab.s.url("media/" + name + ".qcow2")
            let o = try Subprocess("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", "-b", Guest.qcow2, "-F", "qcow2", "--", qcow2]).run()
            #expect(o.status == 0, "\(o.stderrText)")
            for file in [name + ".iso", name + ".qcow2"] {
                let r = try cli.run("vmup", ["-n", "--", file], cwd: lab.s.url("media"))
                #expect(r.status == 0, "vmup -n \(file): \(r.err)")
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: lab.s.url("media")).count == 3 * Self.names.count, "the media are untouched")

        var started: [String] = []
        defer {
            // Whatever a failure left running: vmdown, then the Lab kills by pid.
            if !started.isEmpty { _ = try? cli.run("vmdown", ["-q", "--"] + started, cwd: vms) }
        }
        // Five at a time: twenty TCG guests at once would starve the boot
        // tests of other suites running beside this one.
        for batch in stride(from: 0, to: Self.names.count, by: 5).map({ Array(Self.names.indices)[$0..<min($0 + 5, Self.names.count)] }) {
            for i in batch {
                let r = try cli.run("vmup", ["--", Self.names[i]], cwd: vms)
                #expect(r.status == 0, "vmup \(Self.names[i]): \(r.err)")
                if r.status == 0 { started.append(Self.names[i]) }
            }
            let ready = waitUntil(240) { batch.allSatisfy { lab.serial(homes[$0]).contains("VMTOOLS-GUEST: READY") } }
            #expect(ready, "not READY: \(batch.map { homes[$0] }.filter { !lab.serial($0).contains("VMTOOLS-GUEST: READY") })")
            for i in batch {
                // The guest sees the disk imported from the .ova (booted from it when i is even).
                #expect(lab.serial(homes[i]).contains("DISK sda size=32768"), "\(homes[i]): \(lab.serial(homes[i]))")
                let ps = try cli.run("vmps", ["-d", "--", homes[i]])
                #expect(ps.status == 0, "vmps -d \(homes[i]): \(ps.err)")
            }
            let down = try cli.run("vmdown", ["--"] + batch.map { Self.names[$0] }, cwd: vms)
            #expect(down.status == 0, "vmdown: \(down.err)")
            #expect(waitUntil(60) { batch.allSatisfy { !FileManager.default.fileExists(atPath: homes[$0] + "/qemu.pid") } })
            started = []
            for i in batch { #expect(lab.serial(homes[i]).contains("VMTOOLS-GUEST: POWEROFF"), "\(homes[i]) did not power off cleanly") }
        }
        try Self.expectConsistent(cli, vms, after: "vmdown")
        let rm = try cli.run("vmrm", ["-q", "-y", "--"] + Self.names, cwd: vms)
        #expect(rm.status == 0, "vmrm: \(rm.err)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: vms).isEmpty)
    }

    /// A name that looks like an option needs `--`; without it the error
    /// is clear and nothing happens. A lone `-` is an operand.
    @Test(.requires("qemu-img")) func optionLikeNames() throws {
        guard requireTool("qemu-img") != nil else { return }
        let cli = try CLI(Scratch())
        for name in ["-n", "-"] {
            #expect(try cli.run("vmcreate", ["-q", "-n", "-y", "--", name]).status == 0)
        }
        let rm = try cli.run("vmrm", ["-y", "-n"])
        #expect(rm.status == 2 && rm.err.contains("unknown option -n"))
        let mv = try cli.run("vmmv", ["-n", "x"])
        #expect(mv.status == 2 && mv.err.contains("unknown option -n"))
        #expect(cli.scratch.exists("-n/vm.settings") && !cli.scratch.exists("x"))
        #expect(try cli.run("vmcp", ["-q", "-", "copy"]).status == 0)
        #expect(try cli.run("vmrm", ["-q", "-y", "--", "-n", "-", "copy"]).status == 0)
        #expect(!cli.scratch.exists("-n") && !cli.scratch.exists("-") && !cli.scratch.exists("copy"))
    }
    /// The disk is a regular file found in the unpacked archive: a member
    /// that is a link to a file elsewhere is no disk, and nothing is left.
    @Test(.requires("qemu-img")) func anOVAMemberThatIsALinkIsNoDisk() throws {
        guard requireTool("qemu-img") != nil else { return }
        let cli = try CLI(Scratch())
        try cli.scratch.mkdir("parts")
        try cli.scratch.write("parts/x.ovf", """
            <Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
              <References><File ovf:id="file1" ovf:href="x.vmdk"/></References>
              <DiskSection><Info>Disks</Info><Disk ovf:diskId="d1" ovf:fileRef="file1" ovf:capacity="1048576"/></DiskSection>
              <VirtualSystem ovf:id="x"><Info>x</Info><Name>x</Name></VirtualSystem>
            </Envelope>

            """)
        try FileManager.default.createSymbolicLink(atPath: cli.scratch.url("parts/x.vmdk"), withDestinationPath: "/etc/passwd")
        let c = try Subprocess("/bin/tar", ["-cf", cli.scratch.url("x.ova"), "-C", cli.scratch.url("parts"), "x.ovf", "x.vmdk"]).run()
        try #require(c.status == 0, "\(c.stderrText)")
        let r = try cli.run("vmcreate", ["-n", "-y", "-o", "vm_storage_hdd1_backend=" + cli.scratch.url("x.ova"), "vm"])
        #expect(r.status == 1 && r.err.contains("the member 'x.vmdk' is a symbolic link; an import reads only regular files"), "\(r.err)")
        #expect(!cli.scratch.exists("vm"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: cli.scratch.path).allSatisfy { !$0.hasPrefix(".vmtools-import") })
    }
}
