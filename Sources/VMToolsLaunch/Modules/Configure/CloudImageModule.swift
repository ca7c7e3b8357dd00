import VMToolsCore

/// `cloud_image`: a new VM or a bare boot whose first disk is a
/// distribution's cloud image (`VMSettings.isCloudImageName`), or which is
/// made from a catalog entry (`vm_image_name`), gets a virtio
/// disk bus and a virtio NIC, as those images expect: Debian's cloud kernel
/// has no IDE-era e1000 driver, so the legacy defaults leave it without a
/// network (vm.settings(5), `vm_storage_hdd_interface`). Only where the value
/// is still the shipped default: the command line, a template and the
/// user's or the system's vmtools.conf win.
public enum CloudImageModule: ConfigureModule {
    public static let name = "cloud_image"

    public static func configure(_ c: inout Configuration) throws {
        let disk = c.vm.hdd(1)
        // A VM made from a catalog entry, cloud image or installer, has it too (vmcreate(1), IMAGES BY NAME).
        guard disk.enabled, VMSettings.isCloudImageName(disk.backend) || c.vm.imageOrigin != nil else { return }
        if isShippedDefault(c.settings.provenance(SettingKey.hddInterface)) {
            c.set(SettingKey.hddInterface, "virtio", by: name)
        }
        let nic = c.vm.nic("1")
        if nic.enabled, nic.deviceSetting == SettingKey.defaultNICDevice, isShippedDefault(c.settings.provenance(SettingKey.defaultNICDevice)) {
            c.set(nic.keys.device, "virtio-net-pci", by: name)
        }
    }

    /// Compiled in, or the installation's vmtools.conf: nobody chose it for this VM.
    static func isShippedDefault(_ provenance: Provenance?) -> Bool {
        switch provenance {
        case nil, .builtin?, .config(layer: .share, _, _)?: true
        default: false
        }
    }
}
