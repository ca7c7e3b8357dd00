import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// An appliance from elsewhere names only its own files (vmcreate(1)
/// Imported appliances): each hostile member of the corpus is refused in
/// one line naming it, no host file reaches a disk, no home is half made,
/// and an import killed or interrupted leaves no qemu-img behind.
@Suite struct ImportHardeningTests {
    /// A host file the corpus tries to copy into the new disk.
    static let marker = "VMTOOLS-IMPORT-SECRET-7f3a"

    static func secret(_ s: Scratch, _ name: String = "secret.raw") throws -> String {
        var bytes = [UInt8](repeating: 0, count: 1 << 20)
        for (i, b) in Array(marker.utf8).enumerated() { bytes[i] = b }
        return try s.writeBytes(name, bytes)
    }

    static func ovf(_ href: String) -> String {
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
          <References><File ovf:id="file1" ovf:href="\(href)"/></References>
          <DiskSection><Info>disks</Info><Disk ovf:diskId="d1" ovf:fileRef="file1" ovf:capacity="1048576"/></DiskSection>
          <VirtualSystem ovf:id="x"><Info>x</Info><Name>x</Name></VirtualSystem>
        </Envelope>

        """
    }

    static func flatDescriptor(_ extent: String) -> String {
        "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"\(extent)\" 0\n"
    }

    /// `tar -cf NAME.ova MEMBERS` in `dir`, links archived as links.
    static func tar(_ s: Scratch, _ dir: String, _ ova: String, _ members: [String]) throws -> String {
        let r = try Subprocess("/bin/tar", ["-cf", s.url(ova)] + members, workingDirectory: s.url(dir)).run()
        try #require(r.status == 0, "\(r.stderrText)")
        return s.url(ova)
    }

    static func qemuImg(_ args: [String]) throws {
        let r = try Subprocess("/usr/bin/qemu-img", args).run()
        try #require(r.status == 0, "\(r.stderrText)")
    }

    /// The hostile corpus: name → (appliance or image, what the error must name).
    static func corpus(_ s: Scratch) throws -> [(String, String, String)] {
        let secret = try secret(s)
        var cases: [(String, String, String)] = []
        func member(_ dir: String, _ href: String = "disk.vmdk") throws {
            try s.mkdir(dir)
            try s.write("\(dir)/x.ovf", ovf(href))
        }
        // A symbolic link member.
        try member("link")
        try FileManager.default.createSymbolicLink(atPath: s.url("link/disk.vmdk"), withDestinationPath: secret)
        cases.append(("symlink member", try tar(s, "link", "link.ova", ["x.ovf", "disk.vmdk"]), "the member 'disk.vmdk' is a symbolic link"))
        // A symbolic link to a directory, the disk named through it.
        try member("dirlink", "sub/disk.vmdk")
        try s.mkdir("hostdir")
        try FileManager.default.copyItem(atPath: secret, toPath: s.url("hostdir/disk.vmdk"))
        try FileManager.default.createSymbolicLink(atPath: s.url("dirlink/sub"), withDestinationPath: s.url("hostdir"))
        cases.append(("symlinked directory", try tar(s, "dirlink", "dirlink.ova", ["x.ovf", "sub"]), "the member 'sub' is a symbolic link"))
        // A VMDK descriptor whose flat extent names a host file.
        try member("flat")
        try s.write("flat/disk.vmdk", flatDescriptor(secret))
        cases.append(("absolute flat extent", try tar(s, "flat", "flat.ova", ["x.ovf", "disk.vmdk"]), "'disk.vmdk' names '\(secret)' as an extent"))
        // The same by a relative name that climbs out.
        try member("climb")
        try s.write("climb/disk.vmdk", flatDescriptor("../secret.raw"))
        cases.append(("../ extent", try tar(s, "climb", "climb.ova", ["x.ovf", "disk.vmdk"]), "'disk.vmdk' names '../secret.raw' as an extent"))
        // A qcow2 member (the name is the descriptor's; the format is the file's) with a host backing file.
        try member("backing")
        try qemuImg(["create", "-q", "-f", "qcow2", "-b", secret, "-F", "raw", s.url("backing/disk.vmdk")])
        cases.append(("qcow2 backing file", try tar(s, "backing", "backing.ova", ["x.ovf", "disk.vmdk"]), "'disk.vmdk' names '\(secret)' as its backing file"))
        // A qcow2 member whose external data file is a host file.
        try member("data")
        let dataSecret = try Self.secret(s, "data-secret.raw")
        try qemuImg(["create", "-q", "-f", "qcow2", "-o", "data_file=\(dataSecret),data_file_raw=on", s.url("data/disk.vmdk"), "1M"])
        cases.append(("qcow2 data file", try tar(s, "data", "data.ova", ["x.ovf", "disk.vmdk"]), "'disk.vmdk' names '\(dataSecret)' as its data file"))
        // A .vmx beside a link.
        try s.mkdir("vmx")
        try s.write("vmx/v.vmx", "displayName = \"v\"\nscsi0:0.present = \"TRUE\"\nscsi0:0.fileName = \"disk.vmdk\"\n")
        try FileManager.default.createSymbolicLink(atPath: s.url("vmx/disk.vmdk"), withDestinationPath: secret)
        cases.append((".vmx next to a link", s.url("vmx/v.vmx"), "the disk 'disk.vmdk' it names is a symbolic link"))
        // A plain .ovf whose disk is a link beside it.
        try member("plainovf")
        try FileManager.default.createSymbolicLink(atPath: s.url("plainovf/disk.vmdk"), withDestinationPath: secret)
        cases.append((".ovf next to a link", s.url("plainovf/x.ovf"), "the disk 'disk.vmdk' the descriptor names is a symbolic link"))
        // A bare VMDK descriptor given to -c: what it names must be beside it too.
        try s.write("bare/bare.vmdk", flatDescriptor(secret))
        cases.append(("bare VMDK", s.url("bare/bare.vmdk"), "'bare.vmdk' names '\(secret)' as an extent"))
        return cases
    }

    /// Every .qcow2 anywhere in the scratch tree: none may hold the marker.
    static func disksHoldingTheMarker(_ s: Scratch) throws -> [String] {
        let marker = Data(Self.marker.utf8)
        var found: [String] = []
        for case let rel as String in FileManager.default.enumerator(atPath: s.path)?.allObjects ?? [] {
            let path = s.url(rel)
            guard rel.hasSuffix(".qcow2"), let data = FileManager.default.contents(atPath: path) else { continue }
            if data.range(of: marker) != nil { found.append(rel) }
        }
        return found
    }

    static func leftovers(_ s: Scratch) -> [String] {
        (FileManager.default.enumerator(atPath: s.path)?.allObjects as? [String] ?? []).filter {
            ($0 as NSString).lastPathComponent.hasPrefix(".vmtools-import.")
        }
    }

    @Test(.requires("qemu-img", "qemu-system-x86_64", "tar")) func theHostileCorpusIsRefusedNamingTheMember() throws {
        guard requireTool("qemu-img") != nil else { return }
        let cli = try CLI(Scratch())
        let s = cli.scratch
        for (i, (what, appliance, named)) in try Self.corpus(s).enumerated() {
            let home = s.url("home\(i)")
            guard let r = try cli.run("vmcreate", ["-n", "-y", "-c", appliance, home], environment: cli.environment, within: 60) else { continue }
            #expect(r.status == 1, "\(what): \(r.err)")
            let errors = r.err.split(separator: "\n").filter { $0.contains("ERROR") }
            #expect(errors.count == 1 && errors[0].contains(named), "\(what): \(r.err)")
            #expect(!s.exists("home\(i)"), "\(what): the home was left")
            // A bare boot of the same refuses it the same way.
            guard let up = try cli.run("vmup", ["-n", "-y", appliance], environment: cli.environment, within: 60) else { continue }
            #expect(up.status == 1 && up.err.contains(named), "\(what), vmup: \(up.err)")
        }
        #expect(try Self.disksHoldingTheMarker(s) == [])
        #expect(Self.leftovers(s) == [])
    }

    @Test(.requires("qemu-img")) func namesAreCheckedThroughTheWholeChain() throws {
        guard requireTool("qemu-img") != nil else { return }
        let s = Scratch()
        let secret = try Self.secret(s)
        try s.mkdir("i")
        func image(_ args: String...) throws { try Self.qemuImg(["create", "-q"] + args) }
        func refusal(_ name: String) -> String? {
            expectError { _ = try ImportedImage.check(s.url("i/\(name)"), member: name, subject: "x.ova") }?.message
        }
        // A backing file beside it, whose own descriptor names a host file.
        try s.write("i/mid.vmdk", Self.flatDescriptor(secret))
        try image("-f", "qcow2", "-u", "-b", "mid.vmdk", "-F", "vmdk", s.url("i/top.qcow2"), "1M")
        #expect(refusal("top.qcow2") == "'mid.vmdk' names '\(secret)' as an extent, which is not a file beside it; an import reads only the appliance's own files")
        // A recorded backing format that is no image format, and a protocol as the name.
        try image("-f", "qcow2", "-u", "-b", "fat", "-F", "vvfat", s.url("i/fat.qcow2"), "1M")
        #expect(refusal("fat.qcow2")?.contains("records its backing file's format as 'vvfat'") == true)
        try image("-f", "qcow2", "-u", "-b", "nbd:localhost:10809", "-F", "raw", s.url("i/nbd.qcow2"), "1M")
        #expect(refusal("nbd.qcow2")?.contains("names 'nbd:localhost:10809' as its backing file") == true)
        // A VMware snapshot whose parent is given by a path.
        try image("-f", "vmdk", s.url("i/base.vmdk"), "1M")
        try image("-f", "vmdk", "-b", s.url("i/base.vmdk"), "-F", "vmdk", s.url("i/kid.vmdk"))
        #expect(refusal("kid.vmdk")?.contains("names '\(s.url("i/base.vmdk"))' as its parent disk") == true)
        // A chain beside it is read; the member may not be a link.
        try image("-f", "qcow2", s.url("i/base.qcow2"), "1M")
        try image("-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", s.url("i/child.qcow2"))
        #expect(try ImportedImage.check(s.url("i/child.qcow2"), member: "child.qcow2", subject: "x.ova") == "qcow2")
        try FileManager.default.createSymbolicLink(atPath: s.url("i/link.qcow2"), withDestinationPath: "child.qcow2")
        #expect(refusal("link.qcow2") == "'link.qcow2' is a symbolic link; an import reads only regular files")
    }

    @Test(.requires("qemu-img", "qemu-system-x86_64", "tar")) func filesBesideTheDescriptorStillImport() throws {
        guard requireTool("qemu-img") != nil else { return }
        let cli = try CLI(Scratch())
        let s = cli.scratch
        // A flat extent and a parent by plain names beside the descriptor: allowed, and read.
        try s.mkdir("ok")
        var flat = [UInt8](repeating: 0, count: 1 << 20)
        for (i, b) in Array("GUEST-DATA".utf8).enumerated() { flat[i] = b }
        _ = try s.writeBytes("ok/disk-flat.vmdk", flat)
        try s.write("ok/disk.vmdk", Self.flatDescriptor("disk-flat.vmdk"))
        try s.write("ok/x.ovf", Self.ovf("disk.vmdk"))
        let ova = try Self.tar(s, "ok", "ok.ova", ["x.ovf", "disk.vmdk", "disk-flat.vmdk"])
        let r = try cli.run("vmcreate", ["-n", "-y", "-c", ova, s.url("vm")])
        try #require(r.status == 0, "\(r.err)")
        #expect(try OVFExportTests.compare(s.url("vm/ok.qcow2"), s.url("ok/disk.vmdk")))
        #expect(Self.leftovers(s) == [])
    }

    @Test(.requires("qemu-img", "qemu-system-x86_64", "tar")) func aFIFOAsAnOVAOrAsADiskOfAVMXIsRefusedPromptly() throws {
        guard requireTool("qemu-img") != nil else { return }
        let cli = try CLI(Scratch())
        let s = cli.scratch
        #expect(mkfifo(s.url("fifo.ova"), 0o600) == 0)
        try s.mkdir("vmx")
        try s.write("vmx/v.vmx", "displayName = \"v\"\nscsi0:0.present = \"TRUE\"\nscsi0:0.fileName = \"disk.vmdk\"\n")
        #expect(mkfifo(s.url("vmx/disk.vmdk"), 0o600) == 0)
        for (appliance, named) in [(s.url("fifo.ova"), "is a FIFO"), (s.url("vmx/v.vmx"), "the disk 'disk.vmdk' it names is a FIFO")] {
            guard let r = try cli.run("vmcreate", ["-n", "-y", "-c", appliance, s.url("vm")], environment: cli.environment, within: 20) else { continue }
            #expect(r.status == 1 && r.err.contains(named), "\(r.err)")
            #expect(!s.exists("vm"))
            guard let up = try cli.run("vmup", ["-n", "-y", appliance], environment: cli.environment, within: 20) else { continue }
            #expect(up.status == 1 && up.err.contains(named), "\(up.err)")
        }
    }

    // MARK: killed and interrupted imports

    /// An .ova whose one disk converts for several seconds: 160 MiB of
    /// incompressible data (a random MiB, again and again: qcow2 compresses
    /// each cluster alone), compressed.
    static let slowMiB = 160

    static func slowOVA(_ s: Scratch) throws -> String {
        try s.mkdir("slow")
        let flat = s.url("slow/disk-flat.vmdk")
        let fd = open(flat, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        try #require(fd >= 0)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var chunk = [UInt64](repeating: 0, count: 1 << 17)
        for i in chunk.indices {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            chunk[i] = state
        }
        for _ in 0..<Self.slowMiB { _ = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } }
        close(fd)
        try s.write("slow/disk.vmdk", Self.flatDescriptor("disk-flat.vmdk").replacingOccurrences(of: "RW 2048", with: "RW \(Self.slowMiB << 11)"))
        try s.write("slow/x.ovf", Self.ovf("disk.vmdk"))
        return try tar(s, "slow", "slow.ova", ["x.ovf", "disk.vmdk", "disk-flat.vmdk"])
    }

    /// The pids of `parent`'s children named `name`, from /proc.
    static func children(of parent: pid_t, named name: String) -> [pid_t] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry in
            guard let pid = pid_t(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { return nil }
            let comm = stat[stat.index(after: open)..<close]
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return comm == name && fields.count > 2 && pid_t(fields[1]) == parent ? pid : nil
        }
    }

    static func alive(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
        return !stat[stat.index(after: close)...].hasPrefix(" Z")
    }

    /// Starts `vmcreate -c slow.ova HOME` and returns it once its qemu-img runs.
    static func startSlowImport(_ cli: CLI, _ ova: String, _ home: String) throws -> (Process, pid_t)? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: cli.bin + "/vmcreate")
        p.arguments = ["-n", "-y", "-o", "vm_qemu_compress=yes", "-c", ova, home]
        p.environment = cli.environment
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        var child: pid_t?
        _ = waitUntil(60) {
            child = children(of: p.processIdentifier, named: "qemu-img").first
            return child != nil || !p.isRunning
        }
        guard let child else {
            Issue.record("vmcreate ran no qemu-img (or it was done before it was seen)")
            p.terminate()
            p.waitUntilExit()
            return nil
        }
        return (p, child)
    }

    @Test(.requires("qemu-img", "qemu-system-x86_64", "tar")) func aKilledImportLeavesNoQemuImgAndVmfixRemovesItsDirectory() throws {
        guard requireTool("qemu-img") != nil else { return }
        let cli = try CLI(Scratch())
        let s = cli.scratch
        let ova = try Self.slowOVA(s)
        guard let (p, qemuImg) = try Self.startSlowImport(cli, ova, s.url("vm")) else { return }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        // At once: left running, it would go on for seconds more.
        let gone = waitUntil(2) { !Self.alive(qemuImg) }
        #expect(gone, "qemu-img \(qemuImg) outlived the vmcreate that started it")
        if !gone { kill(qemuImg, SIGKILL) }
        // Nothing could clean up after SIGKILL: vmfix -b knows the unpacked archive.
        let left = Self.leftovers(s)
        #expect(left.count == 1, "\(left)")
        let check = try cli.run("vmfix", ["-n", "-b", s.url("vm")])
        #expect(check.status == 3 && check.err.contains("leftover import and export directories"), "\(check.err)")
        let fix = try cli.run("vmfix", ["-b", s.url("vm")])
        #expect(fix.status == 3 && fix.err.contains("removed"), "\(fix.err)")
        #expect(Self.leftovers(s) == [])
    }

    @Test func vmfixLeavesTheDirectoryOfARunningImportAlone() throws {
        let cli = try CLI(Scratch())
        let s = cli.scratch
        try s.mkdir("vm")
        // This process holds it, as a running vmcreate would.
        let work = try WorkDirectory(in: s.url("vm"), prefix: WorkDirectory.importPrefix, purpose: "test")
        let r = try cli.run("vmfix", ["-b", s.url("vm")])
        #expect(r.status == 0 && r.err.contains("still running; left alone"), "\(r.err)")
        #expect(FileManager.default.fileExists(atPath: work.path))
        work.remove()
    }

    @Test(.requires("qemu-img", "qemu-system-x86_64", "tar")) func anInterruptedImportUndoesItself() throws {
        guard requireTool("qemu-img") != nil else { return }
        let cli = try CLI(Scratch())
        let s = cli.scratch
        let ova = try Self.slowOVA(s)
        guard let (p, qemuImg) = try Self.startSlowImport(cli, ova, s.url("vm")) else { return }
        kill(p.processIdentifier, SIGTERM)
        // Sooner than the conversion would end: the signal reached qemu-img.
        let ended = waitUntil(3) { !p.isRunning }
        #expect(ended, "vmcreate kept converting after SIGTERM")
        if !ended { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        #expect(p.terminationStatus == 1)
        #expect(waitUntil(10) { !Self.alive(qemuImg) })
        // The new home, its half-made disk and the unpacked archive are gone.
        #expect(!s.exists("vm"))
        #expect(Self.leftovers(s) == [])
    }
}
