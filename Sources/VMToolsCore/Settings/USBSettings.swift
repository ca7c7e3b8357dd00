/// Host USB devices passed to the guest (vm.settings(5), `vm_usbN_device`).
extension SettingKey {
    public static let usbPrefix = "vm_usb"
    public static func usbDevice(_ id: String) -> String { "\(usbPrefix)\(id)_device" }
}

extension SettingName {
    /// `vm_usb<N>_device`: USB slots are numbered without limit.
    static func isUSBSetting(_ s: String) -> Bool {
        guard s.hasPrefix(SettingKey.usbPrefix), s.hasSuffix("_device") else { return false }
        let digits = s.dropFirst(SettingKey.usbPrefix.count).dropLast("_device".count)
        return !digits.isEmpty && digits.allSatisfy { $0.isASCII && $0.isNumber }
    }
}

/// One host USB device: by `VVVV:PPPP` (stable across re-plugging) or by
/// `BUS-PORT` (a socket of the host, whatever is plugged into it).
public enum USBDevice: Equatable, Sendable {
    /// Four lowercase hex digits each, as sysfs writes them.
    case id(vendor: String, product: String)
    /// Port is the path of hubs: `2` or `2.3`.
    case port(bus: Int, port: String)

    public static func parse(_ text: String) -> USBDevice? {
        let hex = "0123456789abcdef"
        let parts = text.lowercased().split(separator: ":", omittingEmptySubsequences: false)
        if parts.count == 2 {
            guard parts.allSatisfy({ $0.count == 4 && $0.allSatisfy(hex.contains) }) else { return nil }
            return .id(vendor: String(parts[0]), product: String(parts[1]))
        }
        let bp = text.split(separator: "-", omittingEmptySubsequences: false)
        let isNumber = { (s: Substring) in !s.isEmpty && s.count <= 3 && s.allSatisfy { $0.isASCII && $0.isNumber } }
        guard bp.count == 2, isNumber(bp[0]), let bus = Int(bp[0]), bus > 0 else { return nil }
        let hops = bp[1].split(separator: ".", omittingEmptySubsequences: false)
        guard !hops.isEmpty, hops.count <= 7, hops.allSatisfy(isNumber) else { return nil }
        return .port(bus: bus, port: String(bp[1]))
    }

    /// The `usb-host` sub-options that select it.
    public var hostOptions: String {
        switch self {
        case .id(let v, let p): "vendorid=0x\(v),productid=0x\(p)"
        case .port(let bus, let port): "hostbus=\(bus),hostport=\(port)"
        }
    }

    public var description: String {
        switch self {
        case .id(let v, let p): "\(v):\(p)"
        case .port(let bus, let port): "\(bus)-\(port)"
        }
    }
}

extension VMSettings {
    /// The ids of every non-empty `vm_usbN_device`, in the bytewise order of
    /// their numbers as text (as interfaces are ordered).
    public var usbIDs: [String] {
        let prefix = SettingKey.usbPrefix
        return table.unorderedNames.compactMap { name -> String? in
            guard SettingName.isUSBSetting(name), !table.value(name).isEmpty else { return nil }
            return String(name.dropFirst(prefix.count).dropLast("_device".count))
        }.sorted(by: bytewiseLess)
    }

    /// Each set `vm_usbN_device` with its device, validated.
    public func usbDevices() throws -> [(id: String, device: USBDevice)] {
        try usbIDs.map { id in
            let key = SettingKey.usbDevice(id)
            guard let d = USBDevice.parse(table.value(key)) else {
                throw invalid(key, "expected VENDOR:PRODUCT in hex (046d:c52b) or BUS-PORT (1-2, 1-2.3)")
            }
            return (id, d)
        }
    }
}
