/// The names of the files in a VM home (vmtools.conf(5), `cfg_file_*`),
/// typed: each is a plain name (checked when the configuration loads).
public struct VMFileNames: Sendable, Equatable {
    public var settings: String
    public var childs: String
    public var lock: String
    public var pid: String
    public var monitor: String
    public var qmp: String
    public var serial: String

    init(_ table: SettingsTable) {
        settings = table.value("cfg_file_vmsettings")
        childs = table.value("cfg_file_childs")
        lock = table.value("cfg_file_lock")
        pid = table.value("cfg_file_pid")
        monitor = table.value("cfg_file_monitor")
        qmp = table.value("cfg_file_qmp")
        serial = table.value("cfg_file_serial")
    }

    /// What a running QEMU holds open: its pid file and control sockets,
    /// and those of the helpers beside it (the TPM's), and the guest agent's.
    public var control: [String] { [pid, monitor, qmp, Self.displaySocket, Self.displayPassword, Self.tpmSocket, Self.tpmPid,
                                      Self.guestAgentSocket] }

    /// One boot's leftovers (vmfix(1) -d), never copied to another VM;
    /// with them go the numbered files of `isNumberedWork`.
    public var work: [String] { control + [serial, Self.tpmLog] }

    /// Every name vmtools or a helper it starts writes in a VM home or
    /// run-time directory (vmup(1), "Files in the VM home"), directories
    /// included; with them the numbered files of `isNumberedWork`. A start
    /// refuses a symbolic link at any of them before it writes anything
    /// (`LaunchExecutor.checkWrites`). Not the lock: it is a symbolic link
    /// itself, made by symlink(2), which never follows one.
    public var written: [String] { [settings, childs] + work + Self.kept }

    /// What a start makes and keeps in a home: the UEFI variables, seed
    /// volumes, the TFTP and TPM directories, the SSH client's files.
    public static let kept = [firmwareVars, cloudInitSeed, kickstartVolume, tftpDirectory, tpmDirectory,
                              SSHConfig.fileName, SSHConfig.knownHostsName]

    /// A work file, a numbered one, or a temporary file a write left
    /// (`.NAME.tmp.XXXXXX`, `FileSystem.createExclusiveTemporary`).
    public func isWork(_ name: String) -> Bool { work.contains(name) || Self.isNumberedWork(name) || FileSystem.isTemporaryName(name) }

    /// passt's socket, log and forwards record of network interface N
    /// (`passt-ndN.sock`, `.log`, `.forwards`): one boot's too.
    public static func isNumberedWork(_ name: String) -> Bool {
        guard name.hasPrefix("passt-nd") else { return false }
        for suffix in [".sock", ".log", ".forwards"] where name.hasSuffix(suffix) {
            let n = name.dropFirst(8).dropLast(suffix.count)
            return !n.isEmpty && n.allSatisfy { $0 >= "0" && $0 <= "9" }
        }
        return false
    }

    /// The work files present in `dir`, by name.
    public func workFiles(in dir: String) -> [String] {
        ((try? FileSystem.listDirectory(dir)) ?? []).filter(isWork).sorted(by: bytewiseLess)
    }

    /// Seed volumes a start builds (vm.settings(5), CLOUD-INIT): kept in a
    /// home, removed with a run-time directory's files.
    public static let cloudInitSeed = "cidata.iso"
    public static let kickstartVolume = "oemdrv.iso"
    /// The directory QEMU's TFTP server offers the guest (a preseed file).
    public static let tftpDirectory = "tftp"
}
