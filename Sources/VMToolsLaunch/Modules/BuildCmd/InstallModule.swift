import VMToolsCore

/// `install`: unattended installs from an installer ISO (vm.settings(5),
/// UNATTENDED INSTALLS). A Kickstart file (`vm_install_kickstart`) goes as
/// `ks.cfg` on a small volume labelled `OEMDRV`, `oemdrv.iso` in the VM
/// home, which Anaconda reads without a boot parameter; it is attached like
/// the cloud-init seed. A Debian preseed file (`vm_install_preseed`) cannot
/// go on a volume: d-i reads one only from its initrd, its own installation
/// medium or the network. So it goes in `tftp/` of the home, which QEMU's
/// user-mode TFTP server offers at 10.0.2.2, and the installer is booted
/// with `url=tftp://10.0.2.2/preseed.cfg` (d-i's fetch-url speaks TFTP).
public enum InstallModule: BuildCmdModule {
    public static let name = "install"
    static let drive = "vmtools-oemdrv"
    /// What to type at the installer's boot prompt (d-i's "auto" mode: the network first, then the preseed file).
    public static let preseedBootParameters = "auto=true priority=critical url=tftp://10.0.2.2/preseed.cfg"

    public static func build(_ c: inout QemuCommand) throws {
        guard let dir = c.runDirectory ?? c.home else { return }
        if let file = try c.vm.readableFile(SettingKey.installKickstart, home: c.home, environment: c.environment) {
            let text = try FileSystem.readTextIfExists(file, limit: 16 << 20) ?? ""
            let seed = SeedVolume(path: dir.appendingPathComponent(VMFileNames.kickstartVolume), label: "OEMDRV", files: [.init("ks.cfg", text)])
            if !seed.isCurrent { c.plan.seedVolumes.append(seed) }
            c.plan.machine.seeds.append(.init(setting: SettingKey.installKickstart, path: seed.path, label: seed.label))
            c.append("-drive", "file=\(qemuEscape(seed.path)),format=raw,if=none,id=\(drive),readonly=on,media=cdrom")
            if !c.argv.contains("virtio-scsi-pci,id=\(CloudInitModule.controller)") {
                c.append("-device", "virtio-scsi-pci,id=\(CloudInitModule.controller)")
            }
            c.append("-device", "scsi-cd,drive=\(drive),bus=\(CloudInitModule.controller).0")
        }
        if let file = try c.vm.readableFile(SettingKey.installPreseed, home: c.home, environment: c.environment) {
            let text = try FileSystem.readTextIfExists(file, limit: 16 << 20) ?? ""
            let tftp = SeedVolume(path: dir.appendingPathComponent(VMFileNames.tftpDirectory), label: "TFTP",
                                  files: [.init("preseed.cfg", text)], isDirectory: true)
            // The first user-mode NIC: its DHCP gives the installer the network the file comes over.
            guard let i = c.argv.indices.dropFirst().first(where: { c.argv[$0 - 1] == "-netdev" && c.argv[$0].hasPrefix("user") }) else {
                throw c.invalid(SettingKey.installPreseed, "needs a NIC in user mode: the installer fetches the file from QEMU's TFTP server")
            }
            if !tftp.isCurrent { c.plan.seedVolumes.append(tftp) }
            c.argv[i] += ",tftp=\(qemuEscape(tftp.path))"
            c.plan.machine.seeds.append(.init(setting: SettingKey.installPreseed, path: tftp.path, label: tftp.label, isDirectory: true))
            if let k = c.plan.machine.nics.firstIndex(where: { c.argv[i].hasSuffix(",id=nd\($0.id),tftp=\(qemuEscape(tftp.path))") }) {
                c.plan.machine.nics[k].tftp = tftp.path
            }
            c.notices.append("preseed: boot the Debian installer with: \(preseedBootParameters)")
        }
    }
}
