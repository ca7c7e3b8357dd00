/// A typed view of resolved settings: each accessor parses and validates its
/// value in one place. Validation is lazy, per accessor: a module that is not
/// enabled never fails on a setting it does not read. A bad value throws
/// `NAME: 'VALUE' (from FILE:LINE): why`, naming where the value came from.
public struct VMSettings: Sendable {
    public var table: SettingsTable

    public init(_ table: SettingsTable) { self.table = table }

    /// An error about a setting, naming where its value came from.
    public func invalid(_ name: String, _ why: String) -> VMToolsError {
        let from = table.provenance(name).map { " (from \($0))" } ?? ""
        return VMToolsError(.failure, name, "'\(table.value(name))'\(from): \(why)")
    }

    func yes(_ name: String) -> Bool { table.isYes(name) }
    func string(_ name: String) -> String { table.value(name) }

    // MARK: identity

    public var name: String { string(SettingKey.name) }
    public var home: String { string(SettingKey.home) }

    // MARK: machine

    /// `vm_ram_size`: digits and M or G; nil when empty (QEMU's default).
    public func ramSize() throws -> Size? {
        let v = string(SettingKey.ramSize)
        guard !v.isEmpty else { return nil }
        guard let size = Size(v, units: "MG") else { throw invalid(SettingKey.ramSize, "expected a size such as 512M or 2G") }
        // A VM's own settings may come from elsewhere: a size is used as a number of bytes.
        guard size.bytes != nil else { throw invalid(SettingKey.ramSize, "too large: more bytes than 64 bits hold") }
        return size
    }

    /// `vm_cpu_count`: a positive number; nil when empty.
    public func cpuCount() throws -> Int? {
        let v = string(SettingKey.cpuCount)
        guard !v.isEmpty else { return nil }
        guard let n = Int(v), n > 0, v.allSatisfy(\.isASCII) else { throw invalid(SettingKey.cpuCount, "expected a positive number") }
        return n
    }

    /// `vm_cpu_type`: a QEMU CPU model, optionally with features
    /// (`Haswell,-hle,+avx2`, `host,kvm=off`); empty for none. Validated,
    /// not escaped: a feature list is meant to reach `-cpu` (vmtools.conf(5)).
    public func cpuType() throws -> String {
        let v = string(SettingKey.cpuType)
        guard !v.isEmpty else { return v }
        let parts = v.split(separator: ",", omittingEmptySubsequences: false)
        let features = parts.dropFirst().allSatisfy { f in
            let word = f.hasPrefix("+") || f.hasPrefix("-") ? f.dropFirst() : f
            let kv = word.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return kv.allSatisfy { Self.isQemuName($0) }
        }
        guard Self.isQemuName(parts[0]), features else {
            throw invalid(SettingKey.cpuType, "expected a CPU model and optional features: letters, digits, '.', '_', '-', as in host or Haswell,-hle,+avx2")
        }
        return v
    }

    /// `vm_keyboard_mapping`: a QEMU keymap name (`fr`, `en-us`); empty for none.
    /// QEMU would read a path given here as a keymap file.
    public func keyboardMapping() throws -> String {
        let v = string(SettingKey.keyboardMapping)
        guard v.isEmpty || Self.isQemuName(Substring(v)) else {
            throw invalid(SettingKey.keyboardMapping, "expected a QEMU keymap name such as fr or en-us")
        }
        return v
    }

    public var macosOSK: String { string(SettingKey.macosOSK) }

    /// A name QEMU knows (a device, CPU model, keymap, card): ASCII letters,
    /// digits, `.`, `_`, `-`, not starting with `-`. Nothing QEMU's option
    /// syntax reads (`,` `=`), no path.
    public static func isQemuName(_ s: Substring) -> Bool {
        guard let first = s.utf8.first, first != UInt8(ascii: "-"), s.utf8.count <= 128 else { return false }
        return s.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E || b == 0x5F || b == 0x2D
        }
    }

    /// `vm_boot_order`: letters of a, b, c, d, n, o, p (possibly none).
    public func bootOrder() throws -> String {
        let v = string(SettingKey.bootOrder)
        guard v.allSatisfy({ "abcdnop".contains($0) }) else { throw invalid(SettingKey.bootOrder, "boot order letters are a, b, c, d, n, o, p") }
        return v
    }

    public var bootMenu: Bool { yes(SettingKey.bootMenu) }

    /// `vm_serial_log`: yes, no or empty (no).
    public func serialLog() throws -> Bool {
        let v = string(SettingKey.serialLog)
        guard ["yes", "no", ""].contains(v) else { throw invalid(SettingKey.serialLog, "expected yes or no") }
        return v == "yes"
    }

    // MARK: display

    public enum DisplayType: String, Sendable { case sdl, gtk, none, vnc, spice }

    /// `vm_display_device`: the graphics card; `none` for no display at all.
    public func displayDevice() throws -> String {
        let v = string(SettingKey.displayDevice)
        if v == "tcx" || v == "cg3" { throw invalid(SettingKey.displayDevice, "a SPARC-only card; x86 guests cannot use it") }
        guard v.isEmpty || Self.isQemuName(Substring(v)) else {
            throw invalid(SettingKey.displayDevice, "expected a QEMU graphics card name such as std, qxl or virtio")
        }
        return v
    }

    public func displayType() throws -> DisplayType {
        guard let t = DisplayType(rawValue: string(SettingKey.displayType)) else {
            throw invalid(SettingKey.displayType, "expected sdl, gtk, vnc, spice or none")
        }
        return t
    }

    /// `vm_display_iface`: `unix`, a host name, an IPv4 address or an IPv6
    /// address (bare or in brackets). Anything else could name what QEMU
    /// reads as another listener (`unix:/path`).
    public func displayIface() throws -> String {
        let v = string(SettingKey.displayIface)
        guard v.isEmpty || Self.isHostOrAddress(v) else {
            throw invalid(SettingKey.displayIface, "expected unix, a host name or an IP address such as 127.0.0.1 or ::1")
        }
        return v
    }

    static func isHostOrAddress(_ v: String) -> Bool {
        let bare = v.hasPrefix("[") && v.hasSuffix("]") && v.count > 2 ? String(v.dropFirst().dropLast()) : v
        let isHex: (UInt8) -> Bool = { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x46) || ($0 >= 0x61 && $0 <= 0x66) }
        if bare.contains(":") { return bare.utf8.allSatisfy { isHex($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") } }
        return bare == v && isQemuName(Substring(v))
    }

    /// The lowest port a display may take: `vm_display_portmin` (the default
    /// if unreadable), never under 5900 for VNC, whose displays count from there.
    public var lowestDisplayPort: Int {
        let minimum = Int(string(SettingKey.displayPortMin)) ?? Defaults.integer(SettingKey.displayPortMin)
        return max(minimum, string(SettingKey.displayType) == "spice" ? 1 : 5900)
    }

    /// `vm_display_port`: a fixed port, or nil to take the first free one.
    public func displayPort() throws -> Int? {
        let v = string(SettingKey.displayPort)
        guard !v.isEmpty else { return nil }
        let lowest = lowestDisplayPort
        guard let p = Int(v), p >= lowest, p <= 65535 else { throw invalid(SettingKey.displayPort, "expected a port from \(lowest) to 65535") }
        return p
    }

    // MARK: QEMU

    public enum AccelChoice: String, Sendable { case auto, kvm, tcg }

    /// `vm_qemu_accel`: auto (or empty), kvm or tcg.
    public func qemuAccel() throws -> AccelChoice {
        let v = string(SettingKey.qemuAccel)
        if v.isEmpty { return .auto }
        guard let a = AccelChoice(rawValue: v) else { throw invalid(SettingKey.qemuAccel, "expected auto, kvm or tcg") }
        return a
    }

    /// `vm_qemu_arch`: the binary's suffix, so letters, digits and `_` only.
    public func qemuArch() throws -> String {
        let v = string(SettingKey.qemuArch)
        guard SettingName.isSafe(Substring(v)) else { throw invalid(SettingKey.qemuArch, "letters, digits and _ only") }
        return v
    }

    /// `vm_qemu_params`: extra arguments, a quoted list.
    public func qemuParams() throws -> [String] {
        do {
            return try ExtendedString.splitList(string(SettingKey.qemuParams))
        } catch {
            throw invalid(SettingKey.qemuParams, "not a properly quoted list of arguments")
        }
    }

    public var daemonize: Bool { yes(SettingKey.qemuDaemonize) }
    public var qemuCompress: Bool { yes(SettingKey.qemuCompress) }
    /// Seconds `vmdown` waits for a guest to power off (the default if unreadable).
    public var shutdownTimeout: Int { integer(SettingKey.qemuShutdownTimeout) }

    // MARK: vmtools (cfg_*)

    public var includeUserHome: Bool { yes(SettingKey.includeUserHome) }

    /// A module list (`cfg_modules_*`, `vm_modules_buildcmd`): names in a quoted list.
    public func moduleList(_ setting: String) throws -> [String] {
        do {
            return try ExtendedString.splitList(string(setting))
        } catch {
            throw invalid(setting, "not a properly quoted list of module names")
        }
    }
    public var qemuCommandPrefix: String { string(SettingKey.qemuCommandPrefix) }
    public var assumeYes: Bool { yes(SettingKey.assumeYes) }
    /// `cfg_ui_verbosity` (the default if unreadable).
    public var verbosity: Int { integer(SettingKey.verbosity) }
    /// `cfg_limit_nesting`: how deep a parent chain may go (the default if unreadable).
    public var nestingLimit: Int { integer(SettingKey.limitNesting, minimum: 1) }
    /// `cfg_limit_waitlock`: seconds to wait for a VM's lock (the default if unreadable).
    public var waitLockSeconds: Int { integer(SettingKey.limitWaitLock) }

    /// A number setting, or its default (`Defaults`) when the value set is
    /// not one: these settings have a default, so no accessor states its own.
    func integer(_ name: String, minimum: Int = 0) -> Int {
        (try? table.integer(name, minimum: minimum)) ?? Defaults.integer(name)
    }
}
