import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

@Suite(.serialized) struct CreateTests {
    @Test(.requiresGuest) func vmcreateWritesTheFileAndStartsTheVM() throws {
        guard let lab = try BootLab.guest() else { return }
        let home = lab.s.url("new vm")
        let r = try lab.cli.run("vmcreate", ["-y", "-D", Guest.iso, "-o", "vm_cpu_count=1", home])
        try #require(r.status == 0, "\(r.err)")
        #expect(r.err.contains("INFO: new vm: virtual machine created"))
        #expect(lab.readyOrDump(home), "\(lab.serial(home))")
        let text = try String(contentsOfFile: home + "/vm.settings", encoding: .utf8)
        let body = String(text[text.firstRange(of: "### General ###")!.lowerBound...])
        let mac = try #require(text.split(separator: "\n").first { $0.hasPrefix("vm_networking_iface1_mac=") })
        #expect(body == """
        ### General ###

        vm_name='new vm'
        vm_cpu_count=1

        ### Storage ###

        # HDD 1 - initial size: 40G
        vm_storage_hdd1_backend='\(home)/hdd.qcow2'
        vm_storage_hdd1_enable=yes

        # CD-ROM 1
        # vm_storage_cdrom1_backend=\(Guest.iso)
        vm_storage_cdrom1_enable=yes

        ### Misc settings ###

        vm_networking_iface1_enable=yes
        \(mac)


        """)
        let info = try QemuImg.info(home + "/hdd.qcow2", backingChain: false, environment: ["PATH": "/usr/bin"])
        #expect(info["virtual-size"]?.numberValue == Double(40 << 30))
        #expect(try lab.down(home).status == 0)
        // The next start keeps the disk and has an empty CD drive.
        let next = try lab.cli.run("vmup", ["-n", "-v", home])
        #expect(next.status == 0)
        #expect(next.out.contains("-drive if=ide,index=2,media=cdrom,read-only=on -drive"))
        #expect(!next.err.contains("created"))
    }

    @Test(.requiresGuest) func vmcreateLeavesNothingWhenItFails() throws {
        guard let lab = try BootLab.guest() else { return }
        let r = try lab.cli.run("vmcreate", ["-y", "-o", "vm_ram_size=lots", lab.s.url("broken")])
        #expect(r.status == 1)
        #expect(r.err.contains("vm_ram_size"))
        #expect(!lab.s.exists("broken"))
        try lab.s.write("taken/vm.settings", "vm_name=taken\n")
        let again = try lab.cli.run("vmcreate", ["-y", lab.s.url("taken")])
        #expect(again.status == 1 && again.err.contains("already holds a virtual machine"))
        #expect(try lab.s.read("taken/vm.settings") == "vm_name=taken\n")
        #expect(try lab.cli.run("vmcreate", []).status == 2)
    }

    @Test(.requiresGuest) func anOVAIsConvertedNextToItAndBoots() throws {
        guard let lab = try BootLab.guest() else { return }
        let ova = lab.s.url("appliance.ova")
        try FileManager.default.copyItem(atPath: Guest.ova, toPath: ova)
        // Nobody at the terminal: no conversion, and a clear error.
        let refused = try lab.cli.run("vmup", ["-n", ova])
        #expect(refused.status == 1 && refused.err.contains("is an archive (.ova)"))
        let log = lab.s.url("ova.log")
        let r = try lab.cli.run("vmup", ["-y", "-o", "vm_qemu_params=-serial file:\(log)", ova])
        try #require(r.status == 0, "\(r.err)")
        #expect(lab.s.exists("appliance.qcow2"))
        #expect(ImageFormat.detect(lab.s.url("appliance.qcow2")) == "qcow2")
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: lab.s.path)).contains { $0.hasPrefix(".vmtools-import") })
        #expect(waitUntil(120) { textIfPresent(log).contains("VMTOOLS-GUEST: READY") })
        let row = try #require(try lab.cli.run("vmps", ["-r", "-o", "pn"]).outLines.first { $0.hasSuffix("  appliance.ova") })
        #expect(try lab.cli.run("vmdown", ["-p", String(row.split(separator: " ")[0])]).status == 0)
    }

    @Test(.requiresGuest) func aVMDKRunsInSnapshotModeUnlessConverted() throws {
        guard let lab = try BootLab.guest() else { return }
        #expect(try Subprocess("/bin/tar", ["-xf", Guest.ova, "-C", lab.s.path]).run().status == 0)
        let vmdk = lab.s.url("guest-disk1.vmdk")
        let plain = try lab.cli.run("vmup", ["-n", "-v", vmdk])
        #expect(plain.status == 0)
        #expect(plain.out.contains("format=vmdk,if=ide,index=0,media=disk,snapshot=on"))
        #expect(plain.err.contains("snapshot mode"))
        let converted = try lab.cli.run("vmup", ["-n", "-v", "-y", vmdk])
        #expect(converted.status == 0)
        #expect(converted.out.contains("file=\(lab.s.url("guest-disk1.qcow2")),format=qcow2"))
    }
}
