import VMToolsCore

extension LibvirtDomain {
    /// The name libvirt takes: `/` becomes `-`, a line break a space; empty is `vm`.
    static func domainName(_ name: String) -> String {
        let mapped = String(String.UnicodeScalarView(name.unicodeScalars.map { c -> Unicode.Scalar in
            switch c {
            case "/": return "-"
            case "\n", "\r": return " "
            default: return c
            }
        }))
        return mapped.isEmpty ? "vm" : mapped
    }

    /// `vda`, `hdc`, `sdaa`: libvirt's disk names.
    static func deviceName(_ prefix: String, _ index: Int) -> String {
        var n = index, suffix = ""
        repeat {
            suffix = String(UnicodeScalar(UInt8(97 + n % 26))) + suffix
            n = n / 26 - 1
        } while n >= 0
        return prefix + suffix
    }

    /// The settings the domain expresses whenever the VM sets them: the
    /// machine's own, and every device's (a device libvirt cannot take is
    /// noted under its setting).
    static func expressed(_ table: SettingsTable) -> Set<String> {
        var set: Set<String> = [
            SettingKey.name, SettingKey.uuid, SettingKey.ramSize, SettingKey.cpuCount, SettingKey.cpuType, SettingKey.qemuAccel,
            SettingKey.qemuArch, SettingKey.qemuDaemonize, SettingKey.qemuParams, SettingKey.firmware, SettingKey.tpm,
            SettingKey.bootOrder, SettingKey.bootMenu, SettingKey.bootKernel, SettingKey.bootInitrd, SettingKey.bootAppend,
            SettingKey.rwMode, SettingKey.serialLog, SettingKey.guestAgentEnable, SettingKey.keyboardMapping, SettingKey.modulesBuildcmd,
            SettingKey.displayType, SettingKey.displayDevice, SettingKey.displayIface, SettingKey.displayPort, SettingKey.displayPortMin,
            SettingKey.displayPassword, SettingKey.displayClipboard, SettingKey.displayFullscreen,
            SettingKey.defaultNICDevice, SettingKey.defaultMAC, SettingKey.defaultNICMode, SettingKey.cloudInitEnable,
            SettingKey.installKickstart, SettingKey.installPreseed,
        ]
        let devices = [SettingKey.hddPrefix, SettingKey.cdromPrefix, SettingKey.nicPrefix, SettingKey.sharePrefix, SettingKey.usbPrefix]
        for n in table.names where devices.contains(where: n.hasPrefix) { set.insert(n) }
        return set
    }
}

/// An indented XML writer; attributes in name order so the output is stable.
struct Builder {
    var text = ""
    var notes: [String] = []
    /// The settings named by a note.
    var noted: Set<String> = []
    var stack: [String] = []

    var indent: String { String(repeating: "  ", count: stack.count) }

    static func escape(_ s: String, attribute: Bool = false) -> String { XMLText.escape(s, attribute: attribute) }

    func tag(_ name: String, _ attributes: [String: String]) -> String {
        ([name] + attributes.sorted { $0.key < $1.key }.map { "\($0.key)='\(Self.escape($0.value, attribute: true))'" }).joined(separator: " ")
    }

    mutating func open(_ name: String, _ attributes: [String: String] = [:]) {
        text += indent + "<\(tag(name, attributes))>\n"
        stack.append(name)
    }

    mutating func close() {
        let name = stack.removeLast()
        text += indent + "</\(name)>\n"
    }

    mutating func leaf(_ name: String, _ attributes: [String: String] = [:], text body: String? = nil) {
        if let body {
            text += indent + "<\(tag(name, attributes))>\(Self.escape(body))</\(name)>\n"
        } else {
            text += indent + "<\(tag(name, attributes))/>\n"
        }
    }

    /// A setting libvirt cannot express: a comment here, a line for stderr.
    mutating func note(_ setting: String, _ why: String) {
        let line = "\(setting): not expressible in libvirt: \(why)"
        notes.append(line)
        noted.insert(setting)
        text += indent + "<!-- \(XMLText.comment(Self.escape(line))) -->\n"
    }
}
