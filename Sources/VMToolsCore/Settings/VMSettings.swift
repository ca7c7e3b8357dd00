/// The names of the settings the built-in code reads or writes (vm.settings(5),
/// vmtools.conf(5)). Outside `Settings/`, code names a setting through these,
/// never by a literal (`TypedSettingsTests` checks it).
public enum SettingKey {
    public static let home = "vm_home"
    public static let name = "vm_name"
    public static let bootOrder = "vm_boot_order"
    public static let bootMenu = "vm_boot_menu"
    public static let cpuCount = "vm_cpu_count"
    public static let cpuType = "vm_cpu_type"
    public static let displayDevice = "vm_display_device"
    public static let displayIface = "vm_display_iface"
    public static let displayPort = "vm_display_port"
    public static let displayPortMin = "vm_display_portmin"
    public static let displayType = "vm_display_type"
    public static let keyboardMapping = "vm_keyboard_mapping"
    public static let macosOSK = "vm_macos_osk"
    public static let modulesBuildcmd = "vm_modules_buildcmd"
    public static let defaultNICDevice = "vm_networking_default_device"
    public static let defaultMAC = "vm_networking_default_mac"
    public static let defaultNICMode = "vm_networking_default_mode"
    public static let qemuAccel = "vm_qemu_accel"
    public static let qemuArch = "vm_qemu_arch"
    public static let qemuCompress = "vm_qemu_compress"
    public static let qemuDaemonize = "vm_qemu_daemonize"
    public static let qemuParams = "vm_qemu_params"
    public static let qemuShutdownTimeout = "vm_qemu_shutdown_timeout"
    public static let ramSize = "vm_ram_size"
    public static let serialLog = "vm_serial_log"
    public static let hddInterface = "vm_storage_hdd_interface"
    public static let rwMode = "vm_storage_rwmode"

    public static let includeUserHome = "cfg_include_userhome"
    public static let qemuCommandPrefix = "cfg_qemu_cmdprefix"
    public static let limitNesting = "cfg_limit_nesting"
    public static let limitWaitLock = "cfg_limit_waitlock"
    public static let modulesClone = "cfg_modules_clone"
    public static let modulesBuildcmdList = "cfg_modules_buildcmd"
    public static let modulesConfigureTemplates = "cfg_modules_configure_templates"
    public static let modulesConfigureSettings = "cfg_modules_configure_settings"
    public static let assumeYes = "cfg_ui_assumeyes"
    public static let verbosity = "cfg_ui_verbosity"

    /// A `vm_*` setting a VM's file records: all but the name and home,
    /// which its directory gives.
    public static func isRecorded(_ setting: String) -> Bool { setting.hasPrefix("vm_") && setting != name && setting != home }

    /// Prefixes of the numbered settings: `vm_storage_hddN_…`, `vm_storage_cdromN_…`, `vm_networking_ifaceN_…`.
    public static let hddPrefix = "vm_storage_hdd"
    public static let cdromPrefix = "vm_storage_cdrom"
    public static let nicPrefix = "vm_networking_iface"

    /// The settings of drive slot `n`: `kind` is `hdd` or `cdrom`.
    public static func drive(_ kind: DriveKind, _ n: Int) -> DriveKeys { DriveKeys(prefix: "\(kind.prefix)\(n)") }
    public static func hdd(_ n: Int) -> DriveKeys { drive(.hdd, n) }
    public static func cdrom(_ n: Int) -> DriveKeys { drive(.cdrom, n) }
    public static func nic(_ id: String) -> NICKeys { NICKeys(prefix: "\(nicPrefix)\(id)") }

    public enum DriveKind: String, Sendable {
        case hdd, cdrom
        public var prefix: String { self == .hdd ? hddPrefix : cdromPrefix }
    }

    public struct DriveKeys: Sendable, Equatable {
        /// `vm_storage_hdd2`: the slot itself, as messages name it.
        public let prefix: String
        public var backend: String { prefix + "_backend" }
        public var enable: String { prefix + "_enable" }
        public var createsize: String { prefix + "_createsize" }
    }

    public struct NICKeys: Sendable, Equatable {
        public let prefix: String
        public var enable: String { prefix + "_enable" }
        public var device: String { prefix + "_device" }
        public var mode: String { prefix + "_mode" }
        public var mac: String { prefix + "_mac" }
    }
}

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

    private func yes(_ name: String) -> Bool { table.isYes(name) }
    private func string(_ name: String) -> String { table.value(name) }

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

    /// The lowest port a display may take: `vm_display_portmin` (5900 if
    /// unreadable), never under 5900 for VNC, whose displays count from there.
    public var lowestDisplayPort: Int {
        let minimum = Int(string(SettingKey.displayPortMin)) ?? 5900
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
    /// Seconds `vmdown` waits for a guest to power off (20 if unreadable).
    public var shutdownTimeout: Int { (try? table.integer(SettingKey.qemuShutdownTimeout)) ?? 20 }

    // MARK: storage

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

    // MARK: networking

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
    /// `cfg_ui_verbosity` (2 if unreadable).
    public var verbosity: Int { (try? table.integer(SettingKey.verbosity)) ?? 2 }
    /// `cfg_limit_nesting`: how deep a parent chain may go (100 if unreadable).
    public var nestingLimit: Int { (try? table.integer(SettingKey.limitNesting, minimum: 1)) ?? 100 }
    /// `cfg_limit_waitlock`: seconds to wait for a VM's lock (10 if unreadable).
    public var waitLockSeconds: Int { (try? table.integer(SettingKey.limitWaitLock)) ?? 10 }
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
