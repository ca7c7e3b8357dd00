import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// `vmcp -a VM DEST.ova|DEST.ovf` and the import of what it writes
/// (vmcp(1) OVF and OVA, vmcreate(1) Imported appliances).
@Suite struct OVFExportTests {
    /// A VM with two disks of known content, two NICs, UEFI and a USB device (which an OVF cannot carry).
    static func makeVM(_ cli: CLI, _ name: String = "web") throws -> String {
        let s = cli.scratch
        let home = s.url(name)
        try s.mkdir(name)
        for (i, seed) in [(1, 7), (2, 91)] {
            var bytes = [UInt8](repeating: 0, count: 3 << 20)
            for j in stride(from: 0, to: bytes.count, by: 4096) { bytes[j] = UInt8(truncatingIfNeeded: j / 4096 * seed + i) }
            let raw = try s.writeBytes("\(name)/disk\(i).raw", bytes)
            let r = try Subprocess("/usr/bin/qemu-img", ["convert", "-O", "qcow2", raw, home + "/\(i == 2 ? "base" : "disk1").qcow2"]).run()
            try #require(r.status == 0, "\(r.stderrText)")
            try FileManager.default.removeItem(atPath: raw)
        }
        // Disk 2 is an overlay (as a fork's is): the export flattens its chain.
        let o = try Subprocess("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", home + "/disk2.qcow2"]).run()
        try #require(o.status == 0, "\(o.stderrText)")
        try s.write("\(name)/vm.settings", """
        vm_cpu_count=3
        vm_ram_size=384M
        vm_firmware=uefi
        vm_storage_hdd1_backend=disk1.qcow2
        vm_storage_hdd1_enable=yes
        vm_storage_hdd2_backend=disk2.qcow2
        vm_storage_hdd2_enable=yes
        vm_networking_iface1_enable=yes
        vm_networking_iface1_device=virtio-net-pci
        vm_networking_iface1_mac=52:54:00:aa:bb:01
        vm_networking_iface2_enable=yes
        vm_networking_iface2_device=vmxnet3
        vm_networking_iface2_mac=52:54:00:aa:bb:02
        vm_usb1_device=1234:5678
        vm_tpm=2.0
        vm_share1_path=/srv
        vm_networking_iface1_forward=tcp:8080:80

        """)
        return home
    }

    static func settingLines(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init).filter { $0.hasPrefix("vm_") }
    }

    static func compare(_ a: String, _ b: String) throws -> Bool {
        try Subprocess("/usr/bin/qemu-img", ["compare", "-q", a, b]).run().status == 0
    }

    @Test(.requires("qemu-img", "qemu-system-x86_64")) func anOVARoundTripKeepsTheSettingsAndTheDisks() throws {
        guard requireTool("qemu-img") != nil else { return }
        let cli = try CLI(Scratch())
        let s = cli.scratch
        let vm = try Self.makeVM(cli)
        let r = try cli.run("vmcp", ["-a", vm, s.url("web.ova")])
        try #require(r.status == 0, "\(r.err)")
        // What an OVF cannot carry is said, naming the setting.
        for setting in ["vm_usb1_device='1234:5678'", "vm_tpm='2.0'", "vm_share1_path='/srv'", "vm_networking_iface1_forward='tcp:8080:80'"] {
            #expect(r.err.contains("NOTICE: \(setting): an OVF cannot carry it; not exported"), "\(setting): \(r.err)")
        }
        for carried in ["vm_storage_hdd1", "vm_networking_iface1_device", "vm_networking_iface1_mac", "vm_cpu_count", "vm_firmware"] {
            #expect(!r.err.contains(carried), "\(carried): \(r.err)")
        }
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: s.path)).contains { $0.hasPrefix(".vmtools-export") })

        // The descriptor first, the manifest last (DSP0243 5.3).
        let list = try Subprocess("/bin/tar", ["-tf", s.url("web.ova")]).run()
        #expect(list.stdoutText == "web.ovf\nweb-disk1.vmdk\nweb-disk2.vmdk\nweb.mf\n")
        try s.mkdir("x")
        #expect(try Subprocess("/bin/tar", ["-xf", s.url("web.ova"), "-C", s.url("x")]).run().status == 0)
        for i in 1...2 {
            let info = try QemuImg.info(s.url("x/web-disk\(i).vmdk"), backingChain: false, environment: ["PATH": "/usr/bin"])
            #expect(info["format"]?.stringValue == "vmdk")
            #expect(info["format-specific"]?["data"]?["create-type"]?.stringValue == "streamOptimized")
        }
        // The manifest's digests are the files' (sha256sum agrees with our SHA-256).
        let sums = try Subprocess("/usr/bin/sha256sum", ["web.ovf", "web-disk1.vmdk", "web-disk2.vmdk"], workingDirectory: s.url("x")).run()
        let expected = sums.stdoutText.split(separator: "\n").map { line -> String in
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            return "SHA256(\(parts[1]))= \(parts[0])"
        }.joined(separator: "\n") + "\n"
        #expect(try s.read("x/web.mf") == expected)
        let ovf = try s.read("x/web.ovf")
        #expect(ovf.contains("<rasd:ResourceType>3</rasd:ResourceType>\n        <rasd:VirtualQuantity>3</rasd:VirtualQuantity>"))
        #expect(ovf.contains("<rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>"))
        #expect(ovf.contains("<rasd:VirtualQuantity>384</rasd:VirtualQuantity>"))
        #expect(ovf.contains("<rasd:ResourceSubType>VirtIO</rasd:ResourceSubType>") && ovf.contains("<rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>"))
        #expect(ovf.contains("<vmw:Config ovf:required=\"false\" vmw:key=\"firmware\" vmw:value=\"efi\"/>"))
        #expect(ovf.contains("ovf:capacity=\"\(3 << 20)\""))

        // Imported: the same settings and the same disks, in order.
        let imp = try cli.run("vmcreate", ["-n", "-y", "-c", s.url("web.ova"), s.url("back")])
        try #require(imp.status == 0, "\(imp.err)")
        let lines = try Self.settingLines(s.url("back/vm.settings"))
        for line in ["vm_name=web", "vm_cpu_count=3", "vm_ram_size=384M", "vm_firmware=uefi", "vm_networking_iface1_enable=yes",
                     "vm_networking_iface1_device=virtio-net-pci", "vm_networking_iface1_mac='52:54:00:aa:bb:01'",
                     "vm_networking_iface2_enable=yes", "vm_networking_iface2_device=vmxnet3", "vm_networking_iface2_mac='52:54:00:aa:bb:02'",
                     "vm_storage_hdd1_enable=yes", "vm_storage_hdd2_enable=yes"] {
            #expect(lines.contains(line), "\(line) in \(lines)")
        }
        #expect(lines.filter { $0.hasPrefix("vm_storage_hdd") && $0.contains("_backend=") }.count == 2)
        #expect(try Self.compare(s.url("back/web.qcow2"), vm + "/disk1.qcow2"))
        #expect(try Self.compare(s.url("back/web-disk2.qcow2"), vm + "/disk2.qcow2"))
        #expect(!(try Self.compare(s.url("back/web.qcow2"), vm + "/disk2.qcow2")))
        #expect(ImageFormat.detect(s.url("back/web.qcow2")) == "qcow2")
        let flat = try QemuImg.info(s.url("back/web-disk2.qcow2"), backingChain: false, environment: ["PATH": "/usr/bin"])
        #expect(flat["backing-filename"] == nil)
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: s.url("back"))).contains { $0.hasPrefix(".vmtools-import") })

        // -o wins over the descriptor.
        let o = try cli.run("vmcreate", ["-n", "-y", "-o", "vm_cpu_count=1", "-c", s.url("web.ova"), s.url("mine")])
        try #require(o.status == 0, "\(o.err)")
        #expect(try Self.settingLines(s.url("mine/vm.settings")).contains("vm_cpu_count=1"))
    }

    @Test(.requires("qemu-img", "qemu-system-x86_64")) func thePlainOVFFormWritesFilesBesideItAndImports() throws {
        guard requireTool("qemu-img") != nil else { return }
        let cli = try CLI(Scratch())
        let s = cli.scratch
        let vm = try Self.makeVM(cli)
        try s.mkdir("out")
        let r = try cli.run("vmcp", ["-a", vm, s.url("out/app.ovf")])
        try #require(r.status == 0, "\(r.err)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.url("out")).sorted() == ["app-disk1.vmdk", "app-disk2.vmdk", "app.mf", "app.ovf"])
        #expect(try s.read("out/app.mf").hasPrefix("SHA256(app.ovf)= "))
        // Nothing is overwritten: a second export fails and leaves the first.
        let again = try cli.run("vmcp", ["-a", vm, s.url("out/app.ovf")])
        #expect(again.status == 1 && again.err.contains("exists; not overwritten"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.url("out")).sorted() == ["app-disk1.vmdk", "app-disk2.vmdk", "app.mf", "app.ovf"])

        let imp = try cli.run("vmcreate", ["-n", "-y", "-c", s.url("out/app.ovf"), s.url("back")])
        try #require(imp.status == 0, "\(imp.err)")
        let lines = try Self.settingLines(s.url("back/vm.settings"))
        #expect(lines.contains("vm_cpu_count=3") && lines.contains("vm_networking_iface2_device=vmxnet3"))
        #expect(try Self.compare(s.url("back/app.qcow2"), vm + "/disk1.qcow2"))
        #expect(try Self.compare(s.url("back/app-disk2.qcow2"), vm + "/disk2.qcow2"))
    }

    @Test(.requires("qemu-img", "qemu-system-x86_64")) func anOVAWithABadDigestIsRefusedNamingTheFile() throws {
        guard requireTool("qemu-img") != nil else { return }
        let cli = try CLI(Scratch())
        let s = cli.scratch
        let vm = try Self.makeVM(cli)
        #expect(try cli.run("vmcp", ["-a", vm, s.url("web.ova")]).status == 0)
        try s.mkdir("x")
        #expect(try Subprocess("/bin/tar", ["-xf", s.url("web.ova"), "-C", s.url("x")]).run().status == 0)
        // disk 2's digest off by one digit.
        var mf = try s.read("x/web.mf").split(separator: "\n").map(String.init)
        let last = mf[2].removeLast()
        mf[2].append(last == "0" ? "1" : "0")
        try s.write("x/web.mf", mf.joined(separator: "\n") + "\n")
        let tar = try Subprocess("/bin/tar", ["-cf", s.url("bad.ova"), "web.ovf", "web-disk1.vmdk", "web-disk2.vmdk", "web.mf"],
                                 workingDirectory: s.url("x")).run()
        try #require(tar.status == 0)
        let r = try cli.run("vmcreate", ["-n", "-y", "-c", s.url("bad.ova"), s.url("back")])
        #expect(r.status == 1)
        let errors = r.err.split(separator: "\n").filter { $0.contains("ERROR") }
        #expect(errors.count == 1)
        #expect(errors.first?.contains(s.url("bad.ova")) == true && errors.first?.contains("'web-disk2.vmdk' does not match its SHA-256 digest") == true,
                "\(r.err)")
        #expect(!s.exists("back"))
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: s.path)).contains { $0.hasPrefix(".vmtools-import") })
    }

    /// A failure leaves nothing: no .ova, no temporary directory.
    @Test(.requires("qemu-img", "qemu-system-x86_64")) func aFailedExportLeavesNothing() throws {
        guard requireTool("qemu-img") != nil else { return }
        let cli = try CLI(Scratch())
        let s = cli.scratch
        let vm = try Self.makeVM(cli)
        // Disk 2 is not an image qemu-img can read as one (a directory).
        try FileManager.default.removeItem(atPath: vm + "/disk2.qcow2")
        try s.mkdir("web/disk2.qcow2")
        try s.mkdir("out")
        let r = try cli.run("vmcp", ["-a", vm, s.url("out/web.ova")])
        #expect(r.status == 1, "\(r.err)")
        #expect(r.err.contains("disk2.qcow2"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.url("out")) == [])
        let d = try cli.run("vmcp", ["-a", vm, s.url("out/web.ovf")])
        #expect(d.status == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.url("out")) == [])
    }

    /// A running VM is not exported, locked or not (-n): its disks are changing.
    @Test(.requires("qemu-img", "qemu-system-x86_64")) func aRunningVMIsNotExported() throws {
        guard requireTool("qemu-img") != nil, let qemu = requireTool("qemu-system-x86_64") else { return }
        let cli = try CLI(Scratch())
        let s = cli.scratch
        let vm = try Self.makeVM(cli)
        try #require(try Subprocess(qemu, ["-machine", "none", "-nodefaults", "-display", "none", "-daemonize", "-pidfile", vm + "/qemu.pid"]).run().status == 0)
        let pid = try #require(Int32(try s.read("web/qemu.pid").trimmingCharacters(in: .whitespacesAndNewlines)))
        defer { kill(pid, SIGKILL) }
        try s.mkdir("out")
        for args in [["-a"], ["-a", "-n"]] {
            let r = try cli.run("vmcp", args + [vm, s.url("out/web.ova")])
            #expect(r.status == 1 && r.err.contains("is running (pid \(pid))"), "\(r.err)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: s.url("out")) == [])
        }
    }

    @Test func sha256MatchesTheStandardVectors() {
        var h = SHA256()
        h.update(Array("abc".utf8))
        #expect(h.finalize() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        var long = SHA256()
        for _ in 0..<1000 { long.update([UInt8](repeating: UInt8(ascii: "a"), count: 1000)) }
        #expect(long.finalize() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        var empty = SHA256()
        #expect(empty.finalize() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    /// A descriptor from elsewhere: OVF 2.0 namespaces, MegaBytes, a VirtualBox-style IDE layout, disks placed out of DiskSection order.
    @Test func aForeignDescriptorIsRead() throws {
        let text = """
        <?xml version="1.0"?>
        <ovf:Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/2" xmlns:rasd="x" xmlns:vbox="http://www.virtualbox.org/ovf/machine">
          <ovf:References><ovf:File ovf:id="f1" ovf:href="a.vmdk"/><ovf:File ovf:id="f2" ovf:href="b &amp; c.vmdk"/></ovf:References>
          <ovf:DiskSection><ovf:Disk ovf:diskId="d1" ovf:fileRef="f1" ovf:capacity="2" ovf:capacityAllocationUnits="byte * 2^30"/>
            <ovf:Disk ovf:diskId="d2" ovf:fileRef="f2" ovf:capacity="5"/></ovf:DiskSection>
          <ovf:VirtualSystem ovf:id="vm"><ovf:Name>Web &lt;1&gt;</ovf:Name>
            <ovf:VirtualHardwareSection>
              <ovf:Item><rasd:AllocationUnits>MegaBytes</rasd:AllocationUnits><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>2048</rasd:VirtualQuantity></ovf:Item>
              <ovf:Item><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>4</rasd:VirtualQuantity></ovf:Item>
              <ovf:Item><rasd:HostResource>/disk/d2</rasd:HostResource><rasd:ResourceType>17</rasd:ResourceType></ovf:Item>
              <ovf:Item><rasd:HostResource>/disk/d1</rasd:HostResource><rasd:ResourceType>17</rasd:ResourceType></ovf:Item>
              <ovf:Item><rasd:ResourceSubType>E1000</rasd:ResourceSubType><rasd:ResourceType>10</rasd:ResourceType></ovf:Item>
            </ovf:VirtualHardwareSection>
            <vbox:Machine><Hardware><Firmware type="EFI"/></Hardware></vbox:Machine>
          </ovf:VirtualSystem>
        </ovf:Envelope>
        """
        let d = try OVFDescriptor.parse(text, subject: "x.ovf")
        #expect(d.name == "Web <1>")
        #expect(d.cpus == 4 && d.memoryMB == 2048)
        #expect(d.disks.map(\.file) == ["b & c.vmdk", "a.vmdk"])
        #expect(d.disks.map(\.capacity) == [5, 2 << 30])
        #expect(d.nics == ["E1000"] && d.efi)
        #expect(throws: VMToolsError.self) { try OVFDescriptor.parse("<html/>", subject: "x.ovf") }
        // A descriptor decides nothing outside its directory.
        let s = Scratch()
        try s.mkdir("in")
        try s.write("secret.vmdk", "x")
        try s.write("in/b & c.vmdk", "x")
        let escaping = text.replacingOccurrences(of: "ovf:href=\"a.vmdk\"", with: "ovf:href=\"../secret.vmdk\"")
        let ovf = try s.write("in/x.ovf", escaping)
        #expect(throws: VMToolsError.self) { try OVA.readDescriptor(ovf, in: s.url("in")) }
        do {
            _ = try OVA.readDescriptor(ovf, in: s.url("in"))
        } catch let e as VMToolsError {
            #expect(e.message.contains("'../secret.vmdk', which is not a file beside it"))
        }
        // Our own output reads back as written.
        var mine = OVFDescriptor(name: "a&b")
        mine.cpus = 2
        mine.memoryMB = 512
        mine.disks = [.init(file: "x-disk1.vmdk", capacity: 1 << 30, size: 4096)]
        mine.nics = ["VirtIO", "E1000e"]
        mine.macs = [1: "52:54:00:00:00:01"]
        mine.efi = true
        mine.secureBoot = true
        #expect(try OVFDescriptor.parse(mine.render(), subject: "mine") == mine)
    }
}
