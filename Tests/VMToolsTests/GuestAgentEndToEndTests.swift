import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// The Debian 12 cloud guest, which ships qemu-guest-agent, started by
/// vmup with the channel `vm_guestagent_enable=auto` gives it (cloud-init
/// is on): vminfo reports the address slirp gave it, 10.0.2.15
/// (vm.settings(5), GUEST AGENT).
@Suite(.serialized) struct GuestAgentEndToEndTests {
    @Test(.requiresCloudGuest, .timeLimit(.minutes(15)))
    func vminfoReportsTheCloudGuestsAddress() throws {
        guard let lab = try BootLab.cloud() else { return }
        let s = lab.s, cli = lab.cli
        let base = s.url("base.qcow2")
        let img = try Subprocess("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", "-b", CloudGuest.image, "-F", "qcow2", base]).run()
        try #require(img.status == 0, "\(img.stderrText)")
        let home = s.url("vms/qga")
        let create = try cli.run("vmcreate", ["-n", "-y",
            "-o", "vm_ram_size=1G", "-o", "vm_cpu_count=2", "-o", "vm_cloudinit_enable=yes",
            "-o", "vm_storage_hdd_interface=virtio", "-o", "vm_storage_hdd1_enable=yes", "-o", "vm_storage_hdd1_backend=\(base)",
            "-o", "vm_networking_iface1_enable=yes", "-o", "vm_networking_iface1_device=virtio-net-pci",
            "-o", "vm_boot_kernel=\(CloudGuest.kernel)", "-o", "vm_boot_initrd=\(CloudGuest.initrd)",
            "-o", "vm_boot_append=\(CloudGuest.cmdline)", home])
        try #require(create.status == 0, "\(create.err)")
        let up = try cli.run("vmup", [home])
        try #require(up.status == 0, "\(up.err)")
        #expect(FileSystem.mode(home + "/qga.sock") == 0o600)

        var last = ""
        let answered = waitUntil(600) {
            last = (try? cli.run("vminfo", ["-i", home]).out) ?? ""
            return last.contains("Guest addresses: ")
        }
        try #require(answered, "\(last)\n\(textIfPresent(home + "/serial.log").suffix(3000))")
        let line = last.split(separator: "\n").first { $0.hasPrefix("Guest addresses: ") }.map(String.init) ?? ""
        #expect(line.contains("10.0.2.15/24"), "\(line)")
        #expect(!line.contains("127.0.0.1"), "\(line)")
        let json = try cli.run("vminfo", ["-j", home])
        let state = try #require((try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]])?.first?["state"] as? [String: Any])
        #expect(state["guest_agent"] as? String == "answering")
        #expect((state["guest_addresses"] as? [[String: Any]])?.contains { $0["address"] as? String == "10.0.2.15" } == true, "\(json.out)")
        let down = try cli.run("vmdown", [home])
        #expect(down.status == 0, "\(down.err)")
    }
}
