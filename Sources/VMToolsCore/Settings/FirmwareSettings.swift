/// Firmware and TPM of a VM (vm.settings(5), FIRMWARE).
extension SettingKey {
    public static let firmware = "vm_firmware"
    public static let tpm = "vm_tpm"
}

extension VMFileNames {
    /// The VM's own UEFI variable store (qcow2, so `savevm` snapshots it
    /// with the disks), made from the firmware's template on first start.
    public static let firmwareVars = "firmware-vars.qcow2"
    /// The emulated TPM's state (swtpm), a directory in the VM home.
    public static let tpmDirectory = "tpm"
}

extension VMSettings {
    public enum Firmware: String, Equatable, Sendable, CaseIterable {
        case bios
        case uefi
        /// Secure Boot enforced, Microsoft's keys enrolled.
        case uefiSecure = "uefi-secure"
    }

    public enum TPM: String, Equatable, Sendable, CaseIterable {
        case none
        case v2 = "2.0"
    }

    /// `vm_firmware`: bios (or empty), uefi or uefi-secure.
    public func firmware() throws -> Firmware {
        let v = table.value(SettingKey.firmware)
        if v.isEmpty { return .bios }
        guard let f = Firmware(rawValue: v) else { throw invalid(SettingKey.firmware, "expected bios, uefi or uefi-secure") }
        return f
    }

    /// `vm_tpm`: none (or empty) or 2.0.
    public func tpm() throws -> TPM {
        let v = table.value(SettingKey.tpm)
        if v.isEmpty { return .none }
        guard let t = TPM(rawValue: v) else { throw invalid(SettingKey.tpm, "expected none or 2.0") }
        return t
    }
}
