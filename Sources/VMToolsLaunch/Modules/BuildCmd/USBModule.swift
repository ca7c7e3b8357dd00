import VMToolsCore

/// `usb`: host USB devices (`vm_usbN_device`) on an xHCI controller, and
/// with a SPICE display two `usb-redir` channels a viewer can redirect its
/// own devices through (vm.settings(5)). It reads nothing of the host: the
/// executor checks each device node before QEMU starts (`LaunchPlan.usbDevices`).
public enum USBModule: BuildCmdModule {
    public static let name = "usb"
    /// The controller's id: devices go on its bus `xhci.0`, also those
    /// attached later (vmmon(1)).
    public static let controller = "xhci"
    static let redirectionChannels = 2

    public static func build(_ c: inout QemuCommand) throws {
        let devices = try c.vm.usbDevices()
        let spice = try c.vm.displayDevice() != "none" && c.vm.displayType() == .spice
        guard !devices.isEmpty || spice else { return }
        c.append("-device", "qemu-xhci,id=\(controller)")
        for (id, device) in devices {
            c.append("-device", "usb-host,bus=\(controller).0,id=usb\(id),\(device.hostOptions)")
            c.plan.usbDevices.append(.init(setting: SettingKey.usbDevice(id), device: device))
            c.plan.machine.usbDevices.append(.init(setting: SettingKey.usbDevice(id), device: device))
        }
        guard spice else { return }
        c.plan.machine.usbRedirection = redirectionChannels
        for n in 1...redirectionChannels {
            c.append("-chardev", "spicevmc,name=usbredir,id=usbredir\(n)", "-device", "usb-redir,bus=\(controller).0,chardev=usbredir\(n)")
        }
    }
}
