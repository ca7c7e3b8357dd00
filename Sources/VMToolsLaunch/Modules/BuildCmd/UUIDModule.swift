import VMToolsCore

/// `uuid`: QEMU's `-uuid` (the SMBIOS system UUID) from `vm_uuid`; with
/// cloud-init on, a VM without one gets one, recorded by the start.
public enum UUIDModule: BuildCmdModule {
    public static let name = "uuid"

    public static func build(_ c: inout QemuCommand) throws {
        var uuid = try c.vm.uuid()
        if uuid == nil, try c.vm.cloudInitEnabled() {
            let new = try VMSettings.newUUID()
            if c.home != nil { c.plan.settingsToSave.append((SettingKey.uuid, new)) }
            uuid = new
        }
        if let uuid { c.append("-uuid", uuid) }
        c.plan.machine.uuid = uuid
        c.plan.machine.uuidIsNew = c.plan.settingsToSave.contains { $0.name == SettingKey.uuid }
    }
}
