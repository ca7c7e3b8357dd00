import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// A VMware `.vmx` given to vmcreate or vmup (vmcreate(1) Imported appliances).
@Suite struct VMXImportTests {
    /// Two VMDKs of known content and a .vmx naming them out of order, with two NICs and UEFI.
    static func makeVMX(_ s: Scratch) throws -> String {
        for (name, fill) in [("sys", UInt8(0x11)), ("data", UInt8(0x5A))] {
            let raw = try s.writeBytes("\(name).raw", [UInt8](repeating: fill, count: 1 << 20))
            let r = try Subprocess("/usr/bin/qemu-img", ["convert", "-O", "vmdk", raw, s.url("\(name).vmdk")]).run()
            try #require(r.status == 0, "\(r.stderrText)")
        }
        return try s.write("Web Server.vmx", """
        .encoding = "UTF-8"
        config.version = "8"
        virtualHW.version = "19"
        displayName = "Web Server"
        numvcpus = "2"
        memsize = "1536"
        firmware = "efi"
        scsi0.present = "TRUE"
        scsi0.virtualDev = "lsilogic"
        scsi0:1.present = "TRUE"
        scsi0:1.fileName = "data.vmdk"
        scsi0:0.present = "TRUE"
        scsi0:0.fileName = "sys.vmdk"
        ide1:0.present = "TRUE"
        ide1:0.deviceType = "cdrom-image"
        ide1:0.fileName = "installer.iso"
        ethernet0.present = "TRUE"
        ethernet0.virtualDev = "e1000e"
        ethernet0.addressType = "generated"
        ethernet1.present = "TRUE"
        ethernet1.virtualDev = "vmxnet3"
        ethernet1.addressType = "static"
        ethernet1.address = "00:50:56:00:00:2A"

        """)
    }

    @Test(.requires("qemu-img", "qemu-system-x86_64")) func aVMXWithTwoDisksAndTwoNICsBecomesAVM() throws {
        guard requireTool("qemu-img") != nil else { return }
        let cli = try CLI(Scratch())
        let s = cli.scratch
        let vmx = try Self.makeVMX(s)
        let r = try cli.run("vmcreate", ["-n", "-y", "-c", vmx, s.url("web")])
        try #require(r.status == 0, "\(r.err)")
        let lines = try OVFExportTests.settingLines(s.url("web/vm.settings"))
        for line in ["vm_name='Web Server'", "vm_cpu_count=2", "vm_ram_size=1536M", "vm_firmware=uefi",
                     "vm_storage_hdd1_backend='\(s.url("web/Web Server.qcow2"))'",
                     "vm_storage_hdd2_backend='\(s.url("web/Web Server-disk2.qcow2"))'", "vm_storage_hdd2_enable=yes",
                     "vm_networking_iface1_enable=yes", "vm_networking_iface1_device=e1000e",
                     "vm_networking_iface2_enable=yes", "vm_networking_iface2_device=vmxnet3", "vm_networking_iface2_mac='00:50:56:00:00:2a'"] {
            #expect(lines.contains(line), "\(line) in \(lines)")
        }
        // The disks in scsi0:0, scsi0:1 order, converted to qcow2 with their contents.
        #expect(ImageFormat.detect(s.url("web/Web Server.qcow2")) == "qcow2")
        #expect(try OVFExportTests.compare(s.url("web/Web Server.qcow2"), s.url("sys.vmdk")))
        #expect(try OVFExportTests.compare(s.url("web/Web Server-disk2.qcow2"), s.url("data.vmdk")))
        // The CD-ROM is not a disk; besides the disks only the UEFI VM's variable store was made.
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.url("web")).sorted()
                == ["Web Server-disk2.qcow2", "Web Server.qcow2", "firmware-vars.qcow2", "vm.settings"])
    }

    @Test(.requires("qemu-img", "qemu-system-x86_64")) func aVMXNamingAMissingDiskIsRefused() throws {
        guard requireTool("qemu-img") != nil else { return }
        let cli = try CLI(Scratch())
        let s = cli.scratch
        let vmx = try Self.makeVMX(s)
        try FileManager.default.removeItem(atPath: s.url("data.vmdk"))
        let r = try cli.run("vmcreate", ["-n", "-y", "-c", vmx, s.url("web")])
        #expect(r.status == 1)
        #expect(r.err.contains("'\(vmx)': the disk 'data.vmdk' it names is missing"), "\(r.err)")
        #expect(!s.exists("web"))
        // Without -y and without a terminal, vmup refuses to run a .vmx as a disk.
        let up = try cli.run("vmup", ["-n", vmx])
        #expect(up.status == 1 && up.err.contains("describes a VM (.vmx)"), "\(up.err)")
    }
}
