import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// Shared folders for real (vm.settings(5), SHARED FOLDERS): the Debian 12
/// cloud guest, made a VM by `vmcreate` with a read-write and a read-only
/// share, sees both 9p devices, gets both fstab lines from cloud-init and
/// mounts both: it reads what the host wrote, the host sees what it wrote,
/// the read-only share refuses a write. The guest boots Debian's generic
/// kernel: the cloud kernel is built without 9p (CONFIG_NET_9P is not set).
@Suite(.serialized) struct ShareEndToEndTests {
    @Test(.requiresCloudGuest, .timeLimit(.minutes(15)))
    func aCloudGuestMountsAReadWriteAndAReadOnlyShare() throws {
        guard let lab = try BootLab.cloud() else { return }
        let web = lab.vms + "/web"
        let base = lab.s.url("base.qcow2")
        let img = try Subprocess("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", "-b", CloudGuest.image, "-F", "qcow2", base]).run()
        try #require(img.status == 0, "\(img.stderrText)")
        try lab.s.mkdir("data")
        try lab.s.mkdir("docs")
        _ = try lab.s.write("data/from-host.txt", "written by the host\n")
        _ = try lab.s.write("docs/readme.txt", "read-only text\n")
        let create = try lab.cli.run("vmcreate", ["-n", "-y",
            "-o", "vm_ram_size=1G", "-o", "vm_cpu_count=2",
            "-o", "vm_storage_hdd_interface=virtio", "-o", "vm_storage_hdd1_enable=yes", "-o", "vm_storage_hdd1_backend=\(base)",
            "-o", "vm_networking_iface1_enable=yes", "-o", "vm_networking_iface1_device=virtio-net-pci",
            "-o", "vm_boot_kernel=\(CloudGuest.genericKernel)", "-o", "vm_boot_initrd=\(CloudGuest.genericInitrd)",
            "-o", "vm_boot_append=\(CloudGuest.cmdline)", "-o", "vm_cloudinit_enable=yes",
            "-o", "vm_share1_path=\(lab.s.url("data"))", "-o", "vm_share2_path=\(lab.s.url("docs"))", "-o", "vm_share2_mode=ro", web])
        try #require(create.status == 0, "\(create.err)")

        let up = try lab.cli.run("vmup", ["-w", web])
        try #require(up.status == 0, "\(up.err)\n\(textIfPresent(web + "/serial.log").suffix(3000))")
        #expect(up.err.contains("vm_share1: 9p, not virtiofs ("), "auto says why: \(up.err)")
        let status = try lab.ssh(web, "web", "cloud-init status --wait", seconds: 240)
        #expect(status.stdoutText.contains("status: done"), "\(status.stdoutText)\(status.stderrText)")

        // QEMU gives the guest one virtio 9p PCI device per share (1af4:1009),
        // and cloud-init wrote one fstab line per share (nofail: the boot went on).
        let pci = try lab.ssh(web, "web", "cat /sys/bus/pci/devices/*/vendor /sys/bus/pci/devices/*/device | tr '\\n' ' '")
        #expect(pci.stdoutText.components(separatedBy: "0x1009").count - 1 == 2, "\(pci.stdoutText)\(pci.stderrText)")
        let fstab = try lab.ssh(web, "web", "grep ' 9p ' /etc/fstab")
        #expect(fstab.stdoutText.contains("data /mnt/data 9p trans=virtio,version=9p2000.L,nofail"), "\(fstab.stdoutText)\(fstab.stderrText)")
        #expect(fstab.stdoutText.contains("docs /mnt/docs 9p trans=virtio,version=9p2000.L,ro,nofail"), "\(fstab.stdoutText)")

        let mounts = try lab.ssh(web, "web", "grep ' 9p ' /proc/mounts")
        #expect(mounts.stdoutText.contains("data /mnt/data 9p rw,"), "\(mounts.stdoutText)\(mounts.stderrText)")
        #expect(mounts.stdoutText.contains("docs /mnt/docs 9p ro,"), "\(mounts.stdoutText)")
        #expect(try lab.ssh(web, "web", "cat /mnt/data/from-host.txt").stdoutText == "written by the host\n")
        #expect(try lab.ssh(web, "web", "cat /mnt/docs/readme.txt").stdoutText == "read-only text\n")
        let write = try lab.ssh(web, "web", "echo written by the guest | sudo tee /mnt/data/from-guest.txt")
        #expect(write.status == 0, "\(write.stderrText)")
        #expect(textIfPresent(lab.s.url("data/from-guest.txt")) == "written by the guest\n")
        let refused = try lab.ssh(web, "web", "echo no | sudo tee /mnt/docs/nope")
        #expect(refused.status == 1 && refused.stderrText.contains("Read-only file system"), "\(refused.status) \(refused.stderrText)")
        #expect(!FileManager.default.fileExists(atPath: lab.s.url("docs/nope")))

        // vminfo gives the mount command a guest without cloud-init needs.
        let info = try lab.cli.run("vminfo", [web])
        #expect(info.out.contains("Share: docs \(lab.s.url("docs")) (ro): mkdir -p /mnt/docs && mount -t 9p -o trans=virtio,version=9p2000.L,ro docs /mnt/docs"), "\(info.out)")

        let down = try lab.cli.run("vmdown", [web])
        #expect(down.status == 0, "\(down.err)")
    }
}
