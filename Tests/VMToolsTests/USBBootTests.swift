import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// A guest started with a USB device that is not plugged in, and a device
/// attached and detached while it runs (vmmon(1) `-c`).
@Suite(.serialized) struct USBBootTests {
    @Test(.requiresGuest) func anUnpluggedDeviceWaitsAndDevicesAttachAndDetach() throws {
        guard let lab = try BootLab.guest() else { return }
        let home = try lab.makeVM("usb", "vm_usb1_device=f1f1:0001\n")
        // A host device named by the VM's own settings: the user accepts it (vm.settings(5), HOST PATHS).
        #expect(try lab.cli.run("vmfix", ["-H", home]).status == 3)
        // An empty /sys: whatever this host has, the device is not plugged in.
        try lab.s.mkdir("nosys")
        let up = try lab.cli.run("vmup", ["--", home], env: ["VMTOOLS_TEST_SYS_ROOT": lab.s.url("nosys")])
        try #require(up.status == 0, "\(up.err)")
        defer { _ = try? lab.down(home) }
        #expect(up.err.contains("NOTICE: usb: vm_usb1_device f1f1:0001 is not plugged in: QEMU attaches it when it is"), "\(up.err)")
        func monitor(_ command: String) throws -> String {
            let r = try lab.cli.run("vmmon", ["-c", command, home])
            #expect(r.status == 0, "\(command): \(r.err)")
            // HMP reports a failed command on stdout, as `Error: …` or a bare reason.
            #expect(!r.out.split(separator: "\n").contains { $0.hasPrefix("Error") || $0.contains("not found") }, "\(command): \(r.out)")
            return r.out
        }
        #expect(try monitor("info usb").contains("ID: usb1"))
        _ = try monitor("device_add usb-host,bus=xhci.0,id=usb9,hostbus=7,hostport=3.2")
        #expect(try monitor("info qtree").contains(#"dev: usb-host, id "usb9""#))
        _ = try monitor("device_del usb9")
        #expect(waitUntil(10) { ((try? monitor("info qtree")) ?? "usb9").contains("usb9") == false })
        #expect(try monitor("info qtree").contains(#"dev: usb-host, id "usb1""#))
        let down = try lab.down(home)
        #expect(down.status == 0, "\(down.err)")
    }
}
