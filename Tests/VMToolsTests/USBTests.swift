import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// Host USB devices (`vm_usbN_device`, vm.settings(5)): the arguments of
/// every form, the check of the device node before QEMU starts (on a fake
/// /sys and /dev: `VMTOOLS_TEST_SYS_ROOT`, `VMTOOLS_TEST_DEV_ROOT`), and
/// attaching and detaching on a running guest (vmmon(1)).
@Suite struct USBTests {
    let build = BuildCmdTests()

    /// The arguments the usb module adds: from its controller on.
    func usbArgs(_ s: Scratch, _ values: [String: String]) throws -> [String] {
        let argv = try build.args(s, values)
        guard let i = argv.firstIndex(of: "qemu-xhci,id=xhci") else { return [] }
        return Array(argv[(i - 1)...].prefix { $0 != "-monitor" && $0 != "-name" && $0 != "-k" })
    }

    @Test func eachFormOnTheXHCIController() throws {
        let s = Scratch()
        let argv = try build.args(s, ["vm_usb1_device": "046D:c52b", "vm_usb2_device": "1-2", "vm_usb10_device": "3-1.4.2", "vm_usb3_device": ""])
        let i = try #require(argv.firstIndex(of: "qemu-xhci,id=xhci"))
        #expect(Array(argv[(i - 1)..<(i + 7)]) == [
            "-device", "qemu-xhci,id=xhci",
            "-device", "usb-host,bus=xhci.0,id=usb1,vendorid=0x046d,productid=0xc52b",
            "-device", "usb-host,bus=xhci.0,id=usb10,hostbus=3,hostport=1.4.2",
            "-device", "usb-host,bus=xhci.0,id=usb2,hostbus=1,hostport=2",
        ])
        #expect(argv.filter { $0 == "qemu-xhci,id=xhci" }.count == 1)
        let c = try build.command(s, ["vm_usb1_device": "046d:c52b"])
        #expect(c.plan.usbDevices == [.init(setting: "vm_usb1_device", device: .id(vendor: "046d", product: "c52b"))])
        #expect(c.plan.otherDryRunLines.contains("would check that vm_usb1_device 046d:c52b can be opened read-write"))
    }

    @Test func noDeviceNoController() throws {
        let s = Scratch()
        #expect(!(try build.args(s, [:])).contains { $0.contains("xhci") })
        #expect(!(try build.args(s, ["vm_display_type": "vnc", "vm_usb1_device": ""])).contains { $0.contains("xhci") })
    }

    @Test func spiceGetsTwoRedirectionChannels() throws {
        let s = Scratch()
        let argv = try build.args(s, ["vm_display_type": "spice", "vm_display_port": "5930"])
        let i = try #require(argv.firstIndex(of: "qemu-xhci,id=xhci"))
        #expect(Array(argv[(i - 1)..<(i + 9)]) == [
            "-device", "qemu-xhci,id=xhci",
            "-chardev", "spicevmc,name=usbredir,id=usbredir1", "-device", "usb-redir,bus=xhci.0,chardev=usbredir1",
            "-chardev", "spicevmc,name=usbredir,id=usbredir2", "-device", "usb-redir,bus=xhci.0,chardev=usbredir2",
        ])
        let both = try build.args(s, ["vm_display_type": "spice", "vm_display_port": "5930", "vm_usb1_device": "2-1"])
        #expect(both.filter { $0 == "qemu-xhci,id=xhci" }.count == 1)
        #expect(both.contains("usb-host,bus=xhci.0,id=usb1,hostbus=2,hostport=1"))
        #expect(both.filter { $0.hasPrefix("usb-redir,") }.count == 2)
        // No display, no viewer to redirect from.
        let none = try build.args(s, ["vm_display_type": "spice", "vm_display_device": "none"])
        #expect(!none.contains { $0.contains("usbredir") })
    }

    @Test(arguments: ["046d", "046d:c52", "046d:c52bb", "g46d:c52b", "1", "1-", "-2", "0-1", "1-2.", "1-a", "1-2-3", ":"])
    func badValuesNameTheSetting(_ value: String) throws {
        let s = Scratch()
        #expect {
            _ = try build.args(s, ["vm_usb4_device": value])
        } throws: { e in
            let m = String(describing: e)
            return m.contains("vm_usb4_device: '\(value)'") && m.contains("expected VENDOR:PRODUCT")
        }
    }

    /// Any slot number is a setting on the command line; `-n` tells the
    /// check it would make; a bad value is one line naming the setting.
    @Test func numberedSlotsOnTheCommandLine() throws {
        let s = Scratch()
        let cli = try CLI(s)
        try s.write("etc/vmtools.conf", "vm_display_type=none\n")
        try s.write("vm/vm.settings", "vm_name=vm\n")
        let r = try cli.run("vmup", ["-n", "-v", "-v", "-o", "vm_usb12_device=1-2.3", s.url("vm")])
        #expect(r.status == 0, "\(r.err)")
        #expect((r.out + r.err).contains("-device qemu-xhci,id=xhci -device usb-host,bus=xhci.0,id=usb12,hostbus=1,hostport=2.3"), "\(r.out)")
        #expect(r.err.contains("would check that vm_usb12_device 1-2.3 can be opened read-write"), "\(r.err)")
        let bad = try cli.run("vmup", ["-n", "-o", "vm_usb3_device=logitech", s.url("vm")])
        #expect(bad.status == 1 && bad.err.contains("vm_usb3_device: 'logitech'"), "\(bad.err)")
        #expect(bad.err.split(separator: "\n").count == 1, "\(bad.err)")
        let unknown = try cli.run("vmup", ["-n", "-o", "vm_usbx_device=1-2", s.url("vm")])
        #expect(unknown.status == 2 && unknown.err.contains("vm_usbx_device: unknown setting"), "\(unknown.err)")
    }

    /// A fake /sys/bus/usb/devices entry and its /dev/bus/usb node.
    @discardableResult
    func fakeDevice(_ s: Scratch, _ name: String, vendor: String, product: String, bus: Int, dev: Int, mode: Int = 0o666) throws -> String {
        for (a, v) in [("idVendor", vendor), ("idProduct", product), ("busnum", "\(bus)"), ("devnum", "\(dev)")] {
            try s.write("sys/bus/usb/devices/\(name)/\(a)", v + "\n")
        }
        let node = s.url(String(format: "dev/bus/usb/%03d/%03d", bus, dev))
        try FileManager.default.createDirectory(atPath: node.deletingLastPathComponent, withIntermediateDirectories: true)
        if getuid() == 0 {
            // Root opens any file: a directory is what it cannot open read-write.
            if mode & 0o222 == 0 { try FileManager.default.createDirectory(atPath: node, withIntermediateDirectories: true) }
            else { FileManager.default.createFile(atPath: node, contents: nil) }
        } else {
            FileManager.default.createFile(atPath: node, contents: nil, attributes: [.posixPermissions: mode])
        }
        return node
    }

    @Test func hostLookupBySysfs() throws {
        let s = Scratch()
        try fakeDevice(s, "usb1", vendor: "1d6b", product: "0002", bus: 1, dev: 1)
        let node = try fakeDevice(s, "1-2.3", vendor: "046d", product: "C52B", bus: 1, dev: 7)
        try s.write("sys/bus/usb/devices/1-2.3:1.0/bInterfaceClass", "03\n")
        let host = USBHost(environment: ["VMTOOLS_TEST_SYS_ROOT": s.url("sys"), "VMTOOLS_TEST_DEV_ROOT": s.url("dev")])
        #expect(host.find(.id(vendor: "046d", product: "c52b")) == .init(vendor: "046d", product: "C52B", node: node))
        #expect(host.find(.port(bus: 1, port: "2.3"))?.node == node)
        #expect(host.find(.port(bus: 1, port: "2")) == nil)
        #expect(host.find(.id(vendor: "046d", product: "c52c")) == nil)
        #expect(USBHost(environment: [:]).sys == "/sys")
    }

    /// vminfo(1): a `USB:` line per device and where it is plugged in now;
    /// `-j`: `usb_devices`. A bad value is shown, not fatal.
    @Test func vminfoListsEachDeviceAndWhereItIsPluggedIn() throws {
        let s = Scratch()
        let cli = try CLI(s)
        try s.write("vm/vm.settings", "vm_name=vm\nvm_usb1_device=046D:c52b\nvm_usb2_device=3-1.4\nvm_usb3_device=\n")
        let node = try fakeDevice(s, "1-2", vendor: "046d", product: "c52b", bus: 1, dev: 7)
        let env = ["VMTOOLS_TEST_SYS_ROOT": s.url("sys"), "VMTOOLS_TEST_DEV_ROOT": s.url("dev")]
        let r = try cli.run("vminfo", ["-i", s.url("vm")], env: env)
        #expect(r.status == 0, "\(r.err)")
        #expect(r.outLines.filter { $0.hasPrefix("USB:") } == ["USB: 046d:c52b (vm_usb1_device): at \(node)",
                                                               "USB: 3-1.4 (vm_usb2_device): not plugged in"], "\(r.out)")
        let j = try cli.run("vminfo", ["-j", s.url("vm")], env: env)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(j.out.utf8)) as? [[String: Any]])
        let usb = try #require(doc.first?["usb_devices"] as? [[String: Any]], "\(j.out)")
        #expect(usb.map { $0["setting"] as? String } == ["vm_usb1_device", "vm_usb2_device"])
        #expect(usb.map { $0["device"] as? String } == ["046d:c52b", "3-1.4"])
        #expect(usb.first?["node"] as? String == node && usb.last?["node"] is NSNull, "\(j.out)")

        try s.write("vm/vm.settings", "vm_name=vm\nvm_usb1_device=mouse\n")
        let bad = try cli.run("vminfo", ["-i", s.url("vm")], env: env)
        #expect(bad.out.contains("USB: ? (vm_usb1_device: 'mouse' (from "), "\(bad.out)")
        let badJSON = try cli.run("vminfo", ["-j", s.url("vm")], env: env)
        let badDoc = try #require(try JSONSerialization.jsonObject(with: Data(badJSON.out.utf8)) as? [[String: Any]])
        #expect((badDoc.first?["usb_devices"] as? [String: Any])?["error"] as? String != nil, "\(badJSON.out)")
    }

    /// Through vmup: a node the user cannot open fails the start, naming
    /// the node and the udev rule; nothing is started.
    @Test func aNodeThatCannotOpenFailsNamingItAndTheUdevRule() throws {
        // The system's configuration lets a VM's own settings name host USB
        // devices (vm.settings(5), HOST PATHS). Were the check to pass, the
        // QEMU it started fails the test when the lab ends.
        let lab = try BootLab(config: "vm_display_type=none\ncfg_host_paths=/dev/bus/usb\n")
        let s = lab.s, cli = lab.cli
        try s.write("vm/vm.settings", "vm_name=vm\nvm_usb1_device=046d:c52b\nvm_usb2_device=1-4\n")
        let node = try fakeDevice(s, "1-4", vendor: "046d", product: "c52b", bus: 1, dev: 12, mode: 0o444)
        let env = ["VMTOOLS_TEST_SYS_ROOT": s.url("sys"), "VMTOOLS_TEST_DEV_ROOT": s.url("dev")]
        let r = try cli.run("vmup", [s.url("vm")], env: env)
        #expect(r.status == 1, "\(r.err)")
        #expect(r.err.contains("\(node): vm_usb1_device 046d:c52b: cannot open read-write ("), "\(r.err)")
        #expect(r.err.contains(#"SUBSYSTEM=="usb", ATTR{idVendor}=="046d", ATTR{idProduct}=="c52b", MODE="0660", TAG+="uaccess""#), "\(r.err)")
        #expect(r.err.split(separator: "\n").filter { $0.contains("ERROR") }.count == 1, "\(r.err)")
        #expect(!r.err.contains("started"), "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: s.url("vm/qemu.pid")))
    }
}
