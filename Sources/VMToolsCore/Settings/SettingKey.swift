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

    public static let imageName = "vm_image_name"
    public static let imageURL = "vm_image_url"
    public static let imageDigest = "vm_image_digest"
    public static let snapshotAuto = "vm_snapshot_auto"

    public static let imagesMirror = "cfg_images_mirror"
    public static let imagesUnverified = "cfg_images_unverified"
    public static let imagesOverlay = "cfg_images_overlay"
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
