import VMToolsCore

/// `networking_auto`: a first NIC with a fixed random MAC, unless interface
/// 1 is already defined (`-o vm_networking_iface1_enable=no` creates none).
public enum NetworkingAutoModule: ConfigureModule {
    public static let name = "networking_auto"

    public static func configure(_ c: inout Configuration) throws {
        guard c.value("vm_networking_iface1_enable").isEmpty else { return }
        let prefixSetting = "vm_networking_default_mac"
        let mac: String
        do {
            mac = try MACAddress.random(prefix: c.value(prefixSetting))
        } catch let e as VMToolsError {
            throw VMToolsError(.failure, prefixSetting, e.message)
        }
        c.set("vm_networking_iface1_enable", "yes", by: name)
        c.set("vm_networking_iface1_mac", mac, by: name)
    }
}
