/// The qemu-guest-agent channel (vm.settings(5), GUEST AGENT): a
/// virtio-serial port through which vminfo and vmps ask the guest for its
/// addresses.
extension SettingKey {
    public static let guestAgentEnable = "vm_guestagent_enable"
}

extension VMFileNames {
    /// The agent's socket in the run directory (0600, like QEMU's others).
    public static let guestAgentSocket = "qga.sock"
}

extension VMSettings {
    /// `vm_guestagent_enable`: `yes`, `no`, or `auto` (empty is auto): on
    /// when cloud-init is, since cloud images ship qemu-guest-agent.
    public func guestAgentEnabled() throws -> Bool {
        switch table.value(SettingKey.guestAgentEnable) {
        case "yes": return true
        case "no": return false
        case "auto", "": return try cloudInitEnabled()
        default: throw invalid(SettingKey.guestAgentEnable, "expected auto, yes or no")
        }
    }
}
