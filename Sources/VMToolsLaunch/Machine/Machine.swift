import VMToolsCore
import VMToolsQEMU

/// The machine as QEMU will run it, filled in by the buildcmd modules where
/// they emit its arguments (Docs/ARCHITECTURE.md, "The launch pipeline"):
/// the one answer to "what disks, firmware, TPM and NICs, in which mode".
/// The exporters (`LibvirtDomain`, `OVFExporter`) read it; nothing
/// downstream derives these again from the settings or by searching argv.
public struct Machine: Equatable, Sendable {
    public var name = ""
    public var uuid: String?
    /// The UUID was made by this start (cloud-init), not set by the VM.
    public var uuidIsNew = false
    public var arch = ""
    public var accelerator: Accelerator.Kind = .tcg
    /// The QEMU binary, as the plan runs it.
    public var binary = ""
    /// `-machine`'s type; nil is QEMU's default, `pc` (i440FX).
    public var machineType: String?
    /// The `-machine` options of `vm_qemu_params` besides the type.
    public var machineOptions: [String] = []
    /// `vm_qemu_params` as QEMU gets them (`-enable-kvm` dropped under TCG).
    public var extraParams: [String] = []
    public var ram: Size?
    public var cpus: Int?
    /// `-cpu` as QEMU gets it: `host` is `max` under TCG.
    public var cpuModel: String?
    public var bootOrder = ""
    public var bootMenu = false
    public var directBoot: VMSettings.DirectBoot?
    public var keyboard: String?
    public var daemonized = true
    public var disks: [Disk] = []
    public var cdroms: [CDROM] = []
    /// Volumes vmup writes and attaches itself (cloud-init, Kickstart).
    public var seeds: [Seed] = []
    public var firmware = Firmware()
    public var tpm: TPM?
    public var nics: [NIC] = []
    public var display = Display()
    public var serial = Serial()
    public var shares: [Share] = []
    public var usbDevices: [USB] = []
    /// `usb-redir` channels a SPICE viewer can redirect its own devices through.
    public var usbRedirection = 0
    public var guestAgent: GuestAgent?
    /// The Apple SMC key (`macos` module).
    public var macosOSK: String?

    public init() {}

    /// q35 has no IDE controller: QEMU puts `if=ide` drives on its AHCI
    /// (SATA) ports, the same indices.
    public var isQ35: Bool { machineType.map(FirmwareModule.isQ35) ?? false }

    /// Buses as QEMU really attaches them, once every module has run (the
    /// machine type may come after the disks).
    mutating func settle() {
        guard isQ35 else { return }
        for i in disks.indices where disks[i].bus == .ide { disks[i].bus = .sata }
        for i in cdroms.indices where cdroms[i].bus == .ide { cdroms[i].bus = .sata }
    }

    public struct USB: Equatable, Sendable {
        /// `vm_usbN_device`.
        public var setting: String
        public var device: USBDevice
    }

    public struct GuestAgent: Equatable, Sendable {
        /// The socket QEMU listens on, in the run directory.
        public var socket: String
    }

    public struct Serial: Equatable, Sendable {
        /// The log file in the home (`vm_serial_log=yes`), absolute.
        public var log: String?
        /// On vmup's terminal, muxed with the monitor (a foreground QEMU).
        public var console = false
    }
}
