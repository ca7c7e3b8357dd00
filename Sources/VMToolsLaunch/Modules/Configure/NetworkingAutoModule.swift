import VMToolsCore

/// `networking_auto`: a first NIC with a fixed random MAC, unless interface
/// 1 is already defined (`-o vm_networking_iface1_enable=no` creates none).
public enum NetworkingAutoModule: ConfigureModule {
    public static let name = "networking_auto"

    public static func configure(_ c: inout Configuration) throws {
        let keys = SettingKey.nic("1")
        guard c.vm.nic("1").isUnset else { return }
        let mac: String
        do {
            mac = try MACAddress.random(prefix: c.vm.defaultMACPrefix)
        } catch let e as VMToolsError {
            throw VMToolsError(.failure, SettingKey.defaultMAC, e.message)
        }
        c.set(keys.enable, "yes", by: name)
        c.set(keys.mac, mac, by: name)
    }
}
