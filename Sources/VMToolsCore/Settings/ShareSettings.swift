/// Host folders shared with the guest (vm.settings(5), SHARED FOLDERS).
extension SettingKey {
    public static let sharePrefix = "vm_share"
    public static func share(_ id: String) -> ShareKeys { ShareKeys(prefix: "\(sharePrefix)\(id)") }

    public struct ShareKeys: Sendable, Equatable {
        /// `vm_share2`: the share itself, as messages name it.
        public let prefix: String
        public var path: String { prefix + "_path" }
        public var tag: String { prefix + "_tag" }
        public var mode: String { prefix + "_mode" }
        public var transport: String { prefix + "_transport" }
    }
}

extension SettingName {
    /// `vm_share<N>_(path|tag|mode|transport)`, anchored at both ends.
    package static func isShareSetting(_ s: String) -> Bool {
        guard s.hasPrefix(SettingKey.sharePrefix) else { return false }
        let rest = s.dropFirst(SettingKey.sharePrefix.count)
        let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
        return !digits.isEmpty && ["_path", "_tag", "_mode", "_transport"].contains(String(rest.dropFirst(digits.count)))
    }
}

/// One shared folder, validated.
public struct Share: Sendable, Equatable {
    public enum Mode: String, Sendable { case ro, rw }
    public enum Transport: String, Sendable { case auto, ninep = "9p", virtiofs }
    public var id: String
    /// Absolute, an existing directory.
    public var path: String
    /// The 9p mount tag the guest mounts by.
    public var tag: String
    public var mode: Mode
    public var transport: Transport

    /// Where cloud-init mounts it and where vminfo(1) says to.
    public var guestPath: String { "/mnt/" + tag }
    /// 9p2000.L over virtio, as QEMU's virtio-9p-pci serves it.
    public var mountOptions: String { "trans=virtio,version=9p2000.L" + (mode == .ro ? ",ro" : "") }
    /// The command for a guest without cloud-init.
    public var mountCommand: String { "mkdir -p \(guestPath) && mount -t 9p -o \(mountOptions) \(tag) \(guestPath)" }

    /// A mount tag QEMU and the guest's 9p take: 1 to 31 bytes of letters,
    /// digits, `_`, `-` and `.` (the tag travels in a fixed virtio config
    /// field; `/` or spaces would break fstab and mount).
    public static func isTag(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 31
            && s.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "_-.".unicodeScalars.contains($0)) }
    }
}

extension VMSettings {
    /// The ids of every `vm_shareN_path` with a value, in numeric order.
    public var shareIDs: [String] {
        let prefix = SettingKey.sharePrefix
        return table.unorderedNames.compactMap { name -> String? in
            guard name.hasPrefix(prefix), name.hasSuffix("_path"), !table.value(name).isEmpty else { return nil }
            let id = String(name.dropFirst(prefix.count).dropLast("_path".count))
            return !id.isEmpty && id.allSatisfy({ $0.isASCII && $0.isNumber }) ? id : nil
        }.sorted { (Int($0) ?? 0, $0) < (Int($1) ?? 0, $1) }
    }

    /// Built in or from a vmtools.conf: a default every VM gets.
    static func isDefaultLayer(_ p: Provenance) -> Bool {
        switch p {
        case .builtin, .config: return true
        default: return false
        }
    }

    /// Every share, validated: the path an existing directory (relative
    /// paths from the home whose file set them), tag, mode and transport
    /// known values, tags distinct. A tag, mode or transport without a path
    /// is an error (vm.settings(5), SHARED FOLDERS).
    public func shares(home: String?, environment: [String: String]) throws -> [Share] {
        var list: [Share] = []
        // A tag, mode or transport without a path is a share left half-made.
        // A configuration file's mode or transport is a default for every VM
        // (the shipped one sets vm_share1_mode), not a share.
        for name in table.names(withPrefix: SettingKey.sharePrefix) where SettingName.isShareSetting(name) && !name.hasSuffix("_path") && !table.value(name).isEmpty {
            if !name.hasSuffix("_tag"), table.provenance(name).map(Self.isDefaultLayer) ?? true { continue }
            let keys = SettingKey.share(String(name.dropFirst(SettingKey.sharePrefix.count).prefix(while: { $0.isNumber })))
            if table.value(keys.path).isEmpty { throw invalid(name, "a share needs a host directory (\(keys.path) is empty)") }
        }
        for id in shareIDs {
            let keys = SettingKey.share(id)
            let path = bootPath(keys.path, home: home, environment: environment)
            guard FileSystem.isDirectory(path) else { throw invalid(keys.path, "no directory at \(path)") }
            let modeText = table.value(keys.mode)
            guard let mode = modeText.isEmpty ? .rw : Share.Mode(rawValue: modeText) else { throw invalid(keys.mode, "expected ro or rw") }
            let transportText = table.value(keys.transport)
            guard let transport = transportText.isEmpty ? .auto : Share.Transport(rawValue: transportText) else {
                throw invalid(keys.transport, "expected auto, 9p or virtiofs")
            }
            var tag = table.value(keys.tag)
            if tag.isEmpty {
                let base = path.split(separator: "/").last.map(String.init) ?? ""
                tag = Share.isTag(base) ? base : "share\(id)"
            } else if !Share.isTag(tag) {
                throw invalid(keys.tag, "a mount tag is 1 to 31 letters, digits, _, - or .")
            }
            if let other = list.first(where: { $0.tag == tag }) {
                throw invalid(table.value(keys.tag).isEmpty ? keys.path : keys.tag, "the mount tag '\(tag)' is already \(SettingKey.share(other.id).prefix)'s; set \(keys.tag)")
            }
            list.append(Share(id: id, path: path, tag: tag, mode: mode, transport: transport))
        }
        return list
    }
}
