import VMToolsCore

/// `networking_iface_mac`: a copy gets new MAC addresses (unless `-k`), built
/// from `vm_networking_default_mac`, for every interface with a stored MAC.
public enum NetworkingIfaceMacModule: CloneModule {
    public static let name = "networking_iface_mac"

    public static func clone(_ c: inout CloneJob) throws {
        guard !c.keepUnique else { return }
        for setting in c.source.settings.names where SettingName.isInterfaceSetting(setting) && setting.hasSuffix("_mac") {
            guard !c.value(setting).isEmpty else { continue }
            do {
                c.override(setting, try MACAddress.random(prefix: VMSettings(c.source.settings).defaultMACPrefix))
            } catch let e as VMToolsError {
                throw VMToolsError(.failure, SettingKey.defaultMAC, e.message)
            }
        }
    }
}
