import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// The cloud-init seed as the busybox guest sees it: one more read-only
/// CD-ROM, on the seed's own SCSI controller, the size of `cidata.iso`. (The
/// Debian cloud guest reading it is the end-to-end test's.)
@Suite(.serialized) struct CloudInitBootTests {
    @Test(.requiresGuest) func theGuestSeesTheSeedAndTheStartRecordsTheIdentity() throws {
        guard let lab = try BootLab.guest() else { return }
        let home = try lab.makeVM("cloud one", "vm_cloudinit_sshkey='\(CloudInitTests.key)'\nvm_networking_iface1_mac=52:54:00:c1:00:01")
        let up = try lab.up(home)
        try #require(up.status == 0, "\(up.err)")
        #expect(lab.readyOrDump(home), "\(lab.serial(home))")
        let iso = home + "/cidata.iso"
        let size = try #require(try FileManager.default.attributesOfItem(atPath: iso)[.size] as? Int)
        let disks = lab.serial(home).split(whereSeparator: \.isNewline).filter { $0.contains("VMTOOLS-GUEST: DISK ") }
        // The guest ISO (CD-ROM 1), the data disk, and the seed: read-only, sized as the file.
        #expect(disks.count == 3, "\(lab.serial(home))")
        #expect(disks.contains { $0.contains(" sr") && $0.contains("size=\(size / 512) ") && $0.hasSuffix("ro=1") }, "\(disks)")
        let text = try String(contentsOfFile: home + "/vm.settings", encoding: .utf8)
        let uuid = try #require(text.split(separator: "\n").first { $0.hasPrefix("vm_uuid=") }).dropFirst("vm_uuid=".count)
        #expect(text.contains("vm_cloudinit_instanceid=iid-"))
        let qemu = try #require(QemuProcess.all().first { $0.argv.contains(iso.replacingAll(",", with: ",,")) || $0.argv.contains { $0.contains(iso) } })
        #expect(qemu.argv.contains("-uuid") && qemu.argv.contains(String(uuid)), "\(qemu.argv)")
        #expect(try lab.down(home).status == 0)
        // Stopped and started again: the same seed, nothing to write (but
        // ssh.config, for the SSH forward cloud-init brings).
        let again = try lab.cli.run("vmup", ["-n", "--", home])
        #expect(again.status == 0 && !again.err.contains("would write \(iso)"), "\(again.err)")
        #expect(again.err.contains("would write \(home)/ssh.config"), "\(again.err)")
    }
}
