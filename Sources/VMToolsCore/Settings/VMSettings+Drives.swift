/// The drive slots: `vm_storage_*` (vmtools.conf(5) VM settings).
extension VMSettings {
    /// `vm_storage_rwmode`, the ceiling every disk's mode is held under.
    public enum DiskMode: String, Sendable { case rw, snap, ro }
    public enum DiskBus: String, Sendable { case ide, virtio }

    public func rwMode() throws -> DiskMode {
        guard let m = DiskMode(rawValue: string(SettingKey.rwMode)) else { throw invalid(SettingKey.rwMode, "expected rw, snap or ro") }
        return m
    }

    public func hddInterface() throws -> DiskBus {
        guard let b = DiskBus(rawValue: string(SettingKey.hddInterface)) else { throw invalid(SettingKey.hddInterface, "expected ide or virtio") }
        return b
    }

    /// The numbers N of every `vm_storage_hddN_…` setting, in numeric order.
    public var hddSlots: [Int] { slots(SettingKey.hddPrefix) }
    public var cdromSlots: [Int] { slots(SettingKey.cdromPrefix) }
    public func slots(_ kind: SettingKey.DriveKind) -> [Int] { slots(kind.prefix) }

    private func slots(_ prefix: String) -> [Int] {
        Set(table.unorderedNames.compactMap { name -> Int? in
            guard name.hasPrefix(prefix) else { return nil }
            let digits = name.dropFirst(prefix.count).prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, !digits.hasPrefix("0"), name.dropFirst(prefix.count + digits.count).hasPrefix("_") else { return nil }
            return Int(digits)
        }).sorted()
    }

    public func hdd(_ n: Int) -> Drive { Drive(settings: self, keys: SettingKey.hdd(n)) }
    public func cdrom(_ n: Int) -> Drive { Drive(settings: self, keys: SettingKey.cdrom(n)) }
    public func drive(_ kind: SettingKey.DriveKind, _ n: Int) -> Drive { Drive(settings: self, keys: SettingKey.drive(kind, n)) }

    /// One drive slot (`vm_storage_hddN_*` or `vm_storage_cdromN_*`).
    public struct Drive: Sendable {
        let settings: VMSettings
        public let keys: SettingKey.DriveKeys

        public var backend: String { settings.string(keys.backend) }
        public var enabled: Bool { settings.yes(keys.enable) }
        /// The enable value as written (for messages).
        public var enableValue: String { settings.string(keys.enable) }
        /// The createsize as written; empty for none.
        public var createsizeText: String { settings.string(keys.createsize) }

        /// The size of a disk to create: digits and M, G or T; nil for none.
        public func createsize() throws -> Size? {
            let v = createsizeText
            guard !v.isEmpty else { return nil }
            guard let s = Size(v, units: "MGT") else { throw settings.invalid(keys.createsize, "expected a size such as 512M, 40G or 1T") }
            guard s.bytes != nil else { throw settings.invalid(keys.createsize, "too large: more bytes than 64 bits hold") }
            return s
        }

        /// `no` written by the user (a VM file, template or the command line), not a default.
        public var isExplicitlyDisabled: Bool {
            guard !enableValue.isEmpty, !enabled else { return false }
            switch settings.table.provenance(keys.enable) {
            case .vmFile, .template, .commandLine: return true
            default: return false
            }
        }

        /// A new disk asked for by its createsize alone (vm.settings(5)): its
        /// slot is taken, though it has no backend yet.
        public var isRequestedByCreatesize: Bool {
            let size = createsizeText
            guard !size.isEmpty, size != "0", backend.isEmpty else { return false }
            return enabled || !isExplicitlyDisabled
        }
    }
}

/// A size setting: digits and one unit letter (`512M`, `2G`, `1T`). `text`
/// is the value as written; QEMU and qemu-img take it as it is.
public struct Size: Sendable, Equatable, CustomStringConvertible {
    public let text: String
    public var unit: Character { text.last ?? "M" }
    public var description: String { text }

    /// nil unless `s` is digits followed by one letter of `units`.
    public init?(_ s: String, units: String) {
        guard s.count >= 2, let u = s.last, units.contains(u) else { return nil }
        guard s.dropLast().allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        text = s
    }

    /// The size in MiB; nil when it does not fit an Int.
    public var mebibytes: Int? {
        guard let n = Int(text.dropLast()) else { return nil }
        let factor: Int = switch unit { case "T": 1 << 20; case "G": 1 << 10; default: 1 }
        let (m, overflow) = n.multipliedReportingOverflow(by: factor)
        return overflow ? nil : m
    }
}
