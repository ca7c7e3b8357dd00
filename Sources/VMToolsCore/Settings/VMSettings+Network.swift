/// The network interfaces: `vm_networking_*` (vmtools.conf(5) VM settings).
extension VMSettings {
    public var defaultMACPrefix: String { string(SettingKey.defaultMAC) }

    /// The ids of every `vm_networking_ifaceN_enable`, in the bytewise order of
    /// their numbers as text (1, 10, 2), which fixes the guest's PCI slots.
    public var nicIDs: [String] {
        let prefix = SettingKey.nicPrefix
        return table.unorderedNames.compactMap { name -> String? in
            guard name.hasPrefix(prefix), name.hasSuffix("_enable") else { return nil }
            let id = String(name.dropFirst(prefix.count).dropLast("_enable".count))
            return !id.isEmpty && id.allSatisfy({ $0.isASCII && $0.isNumber }) ? id : nil
        }.sorted(by: bytewiseLess)
    }

    public func nic(_ id: String) -> NIC { NIC(settings: self, keys: SettingKey.nic(id)) }

    /// One network interface; empty fields fall back to `vm_networking_default_*`.
    public struct NIC: Sendable {
        let settings: VMSettings
        public let keys: SettingKey.NICKeys

        public var enabled: Bool { settings.yes(keys.enable) }
        /// Unset: the configure module `networking_auto` may add interface 1.
        public var isUnset: Bool { settings.string(keys.enable).isEmpty }
        /// The setting the model comes from: the interface's own or the default.
        public var deviceSetting: String { settings.string(keys.device).isEmpty ? SettingKey.defaultNICDevice : keys.device }
        /// The NIC model, a QEMU device name (`e1000`, `virtio-net-pci`): it
        /// starts QEMU's `-device` value, so no options ride along.
        public func device() throws -> String {
            let v = settings.string(deviceSetting)
            guard VMSettings.isQemuName(Substring(v)) else {
                throw settings.invalid(deviceSetting, "expected a QEMU network device name such as e1000 or virtio-net-pci")
            }
            return v
        }
        public var mode: String { fallback(keys.mode, SettingKey.defaultNICMode) }
        /// The setting the MAC comes from: the interface's own or the default prefix.
        public var macSetting: String { settings.string(keys.mac).isEmpty ? SettingKey.defaultMAC : keys.mac }

        /// A MAC: the one set, or random within the default prefix.
        public func mac() throws -> String {
            do {
                return try MACAddress.random(prefix: settings.string(macSetting))
            } catch let e as VMToolsError {
                throw settings.invalid(macSetting, e.message)
            }
        }

        private func fallback(_ own: String, _ general: String) -> String {
            let v = settings.string(own)
            return v.isEmpty ? settings.string(general) : v
        }
    }
}
