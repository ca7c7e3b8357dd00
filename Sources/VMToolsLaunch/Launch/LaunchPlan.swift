import VMToolsCore

/// Everything one start of QEMU will do, worked out before anything is
/// touched (Docs/ARCHITECTURE.md, "The launch pipeline"). Buildcmd modules
/// fill it in; `vmup -n` prints it; `LaunchExecutor` alone carries it out.
public struct LaunchPlan: Sendable {
    /// QEMU's command line, the binary first.
    public var argv: [String] = []
    /// One-line messages for the user (listening URLs, mode changes).
    public var notices: [String] = []
    /// Missing disks a createsize asks for (vm.settings(5)); never an existing file.
    public var disksToCreate: [DiskToCreate] = []
    /// Existing disks a size setting grows before QEMU starts (vm.settings(5)).
    public var disksToGrow: [DiskToGrow] = []
    /// `vm_snapshot_auto=grow`: a snapshot of the VM before the first disk grows (vm.settings(5)).
    public var snapshotBeforeGrowing = false
    /// Sockets a stopped QEMU left (it cannot remove a relative socket after
    /// it changed to /); the VM was checked not to be running.
    public var filesToRemove: [String] = []
    /// Files made for QEMU to open, removed once it has started.
    public var generatedFiles: [GeneratedFile] = []
    /// Seed volumes to (re)build in the VM home, kept after the start
    /// (cidata.iso, an OEMDRV volume): only those whose inputs changed.
    package var seedVolumes: [SeedVolume] = []
    /// Directories a start needs that are missing (the TPM's state), made
    /// 0700 before the helpers start; a new one goes if the start fails.
    public var directoriesToCreate: [String] = []
    /// Processes that run beside QEMU (passt, swtpm).
    public var helpers: [HelperProcess] = []
    /// Forwards a helper serves (passt): their ports are known without
    /// asking QEMU; a host port of 0 is chosen right before the helper starts.
    public var helperForwards: [HelperForward] = []
    /// What is only known once QEMU runs.
    public var readBack: [Fact] = []
    /// Settings a start makes part of the VM: a disk made from a createsize
    /// alone gets its backend and enable lines, so copies and forks know it.
    public var settingsToSave: [(name: String, value: String)] = []
    /// Ports the executor chooses right before QEMU starts, by name: the
    /// argv, notices and helper arguments hold them as placeholders
    /// (`LaunchPlan.placeholder`), filled in by `filled(_:)`.
    public var portChoices: [PortChoice] = []
    /// Imported images converted to qcow2 before anything else (vmcreate(1),
    /// Imported images); the settings already name the results.
    public var conversions: [Conversion] = []
    /// Questions to the host a start depends on (`qemu -chardev help`),
    /// asked by the executor before anything is written.
    public var probes: [Probe] = []
    /// Fact: a `-netdev user` of this plan holds forwards (`hostfwd=`):
    /// QEMU says over QMP which host ports they took.
    public var userForwards = false

    /// Notes `userForwards` when a `-netdev` value a module passes is
    /// user-mode networking with forwards.
    mutating func notePassed(netdev value: String) {
        if value.hasPrefix("user"), value.contains("hostfwd=") { userForwards = true }
    }
    /// Fact: the serial log QEMU writes in its run directory, a name
    /// (`cfg_file_serial`); made 0600 before QEMU opens it.
    public var serialLog: String?
    /// Host USB devices whose node the user must be able to open, checked
    /// right before QEMU starts (vm.settings(5), `vm_usbN_device`).
    public var usbDevices: [USBCheck] = []
    /// A UEFI variable store to make from its firmware's template before
    /// QEMU starts (vm.settings(5), FIRMWARE); nil when it exists or for BIOS.
    public var firmwareStore: FirmwareStore?
    /// Where to write a new display password before QEMU starts
    /// (`vm_display_password=auto`), 0600; removed with the run files.
    public var displayPassword: String?
    /// The host files, directories and devices the guest gets (vm.settings(5), HOST PATHS).
    public var hostPaths: [HostPath] = []
    /// The machine as QEMU runs it, filled in beside argv (the exports read it).
    public var machine = Machine()
    /// `snapshots/.resume` (vmsnap(1), RESUMING): a usable one added
    /// `-loadvm NAME`; the executor removes it after the start attempt.
    public var resume: ResumeMarker?

    public init() {}

    public struct USBCheck: Equatable, Sendable {
        public var setting: String
        public var device: USBDevice
    }

    /// `qemu-img convert` of the template into the VM's own qcow2 store.
    public struct FirmwareStore: Equatable, Sendable {
        public var path: String
        public var template: String
        public var templateFormat: String
    }

    public struct DiskToCreate: Equatable, Sendable {
        public var path: String
        public var size: String
        public var format = "qcow2"
        public var backing: String?
        /// qemu-img's `preallocation`: `off` (thin) or thick.
        public var preallocation = "off"
        /// How many notices come before its "created" line (the module
        /// order); where it is told, not what it is, so not compared.
        public var position = 0

        public static func == (a: Self, b: Self) -> Bool {
            a.path == b.path && a.size == b.size && a.format == b.format && a.backing == b.backing && a.preallocation == b.preallocation
        }
    }

    /// `qemu-img resize` of an existing disk, from its virtual size to a larger one.
    public struct DiskToGrow: Equatable, Sendable {
        public var path: String
        public var format: String
        public var from: Int
        public var to: Int

        /// `40G`, `512M`, or bytes: sizes as the settings write them.
        public static func text(_ bytes: Int) -> String {
            for (unit, shift) in [("T", 40), ("G", 30), ("M", 20)] where bytes % (1 << shift) == 0 && bytes >= 1 << shift {
                return "\(bytes >> shift)\(unit)"
            }
            return "\(bytes) bytes"
        }
    }

    /// The notices with a line for each disk that `made` names put where its
    /// module planned it.
    func notices(withDisks made: (DiskToCreate) -> String?) -> [String] {
        var lines: [String] = []
        for (i, n) in notices.enumerated() {
            lines += disksToCreate.filter { $0.position == i }.compactMap(made)
            lines.append(n)
        }
        return lines + disksToCreate.filter { $0.position >= notices.count }.compactMap(made)
    }

    public struct GeneratedFile: Equatable, Sendable {
        public enum Kind: Equatable, Sendable { case isoFromDirectory(String) }
        public var path: String
        public var kind: Kind
    }

    /// A process started before QEMU and stopped when it goes. In the
    /// foreground the executor stops it once QEMU exits; beside a daemonised
    /// QEMU it must tie its life to QEMU's itself (a socket QEMU holds).
    public struct HelperProcess: Equatable, Sendable {
        public var executable: String
        public var arguments: [String]
        /// A socket the helper makes, which QEMU connects to: QEMU starts
        /// once it exists.
        public var readyPath: String? = nil
        /// Where the executor records the helper's forwards with their real
        /// ports (`LiveForward.description`, one a line, 0600), for vminfo and vmps.
        public var forwardsFile: String? = nil
        /// Its output, 0600: a helper beside a daemonised QEMU outlives vmup.
        public var log: String? = nil
    }

    /// One forward of a helper. A host port of 0 is the port choice
    /// `port` names: the executor binds it, writes it where the helper's
    /// arguments hold the placeholder, and reads it back from there.
    public struct HelperForward: Equatable, Sendable {
        /// The interface's number (`nd2` → `2`).
        public var nic: String
        public var forward: PortForward
        /// Which of `helpers` serves it (its forwards file).
        public var helper: Int
        /// The port choice for a host port of 0.
        public var port: String?
    }

    public enum Fact: Equatable, Sendable {
        /// The VNC port QEMU took (`to=`), asked over QMP and announced after `text`.
        case vncPort(announcement: String)
        /// The forwards' real host ports (`info usernet` for user-mode
        /// interfaces, `helperForwards` for passt), announced; `ssh` when one
        /// goes to guest TCP port 22 (its home gets ssh.config).
        case forwards(ssh: SSHPlan?)
    }

    /// What ssh.config holds besides the port, known before QEMU starts.
    public struct SSHPlan: Equatable, Sendable {
        public var name: String
        /// nil for a bare boot: no ssh.config.
        public var home: String?
        public var user: String
        public var identityFile: String?
        public var instanceID: String
    }

    /// True when a forward goes to guest TCP port 22 (`vmup -w` waits on it).
    public var forwardsSSH: Bool {
        readBack.contains { if case .forwards(.some) = $0 { true } else { false } }
    }

    /// `-n`: what a start would do besides running QEMU, one line each.
    public var dryRunLines: [String] {
        disksToCreate.map(Self.wouldCreate) + otherDryRunLines
    }

    static func wouldCreate(_ d: DiskToCreate) -> String {
        "would create \(d.path) (\(d.size)" + (d.preallocation == "off" ? ")" : ", preallocation=\(d.preallocation))")
    }

    /// `-n`: what a start would do besides running QEMU and creating disks.
    var otherDryRunLines: [String] {
        conversions.map(\.dryRunLine)
            + probes.map(\.dryRunLine)
            + filesToRemove.map { "would remove the stale \($0.hasSuffix(".sock") ? "socket" : "file") \($0)" }
            + directoriesToCreate.map { "would create the directory \($0)" }
            + (firmwareStore.map { ["would create \($0.path) (UEFI variables from \($0.template))"] } ?? [])
            + snapshotDryRunLines
            + disksToGrow.map { "would grow \($0.path) from \(DiskToGrow.text($0.from)) to \(DiskToGrow.text($0.to))" }
            + seedVolumes.map { "would write \($0.path) (the \($0.label) \($0.isDirectory ? "directory" : "volume"): \($0.files.map(\.name).joined(separator: ", ")))" }
            + generatedFiles.map { g in
                switch g.kind { case .isoFromDirectory(let dir): "would pack \(dir) into \(g.path) (an ISO for QEMU)" }
            }
            + helpers.map { "would run \(([$0.executable] + $0.arguments).map(shellQuote).joined(separator: " ")) beside QEMU" }
            + readBack.map { fact in
                switch fact {
                case .vncPort: ["would ask QEMU over QMP which VNC port it took"]
                case .forwards(let ssh):
                    (userForwards ? ["would ask QEMU over QMP which host ports its forwards took"] : [])
                        + helperForwards.filter { $0.forward.hostPort == 0 }.map {
                            "would choose a free \($0.forward.proto.rawValue) port on \($0.forward.address) for the forward to guest port \($0.forward.guestPort)"
                        }
                        + (ssh?.home.map { ["would write \($0.appendingPathComponent(SSHConfig.fileName))"] } ?? [])
                }
            }.flatMap { $0 }
            + portChoices.compactMap(\.dryRunLine)
            + usbDevices.map { "would check that \($0.setting) \($0.device.description) can be opened read-write" }
            + settingsToSave.map { "would record \($0.name)=\($0.value) in the VM's settings" }
            + hostPaths.map(\.dryRunLine)
            + (resume.map { [$0.dryRunLine] } ?? [])
    }
}
