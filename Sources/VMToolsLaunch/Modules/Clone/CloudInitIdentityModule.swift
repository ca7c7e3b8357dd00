import VMToolsCore

/// `cloudinit_identity`: a copy or fork is a new instance (vm.settings(5),
/// CLOUD-INIT): a new `vm_cloudinit_instanceid` (cloud-init runs again: new
/// host name, SSH host keys) and a new `vm_uuid`, for each the source has;
/// `-k` keeps them, as it keeps the MACs.
public enum CloudInitIdentityModule: CloneModule {
    public static let name = "cloudinit_identity"

    public static func clone(_ c: inout CloneJob) throws {
        guard !c.keepUnique else { return }
        if !c.value(SettingKey.cloudInitInstanceID).isEmpty {
            c.override(SettingKey.cloudInitInstanceID, try VMSettings.newInstanceID())
        }
        if !c.value(SettingKey.uuid).isEmpty { c.override(SettingKey.uuid, try VMSettings.newUUID()) }
    }
}
