import VMToolsCore

/// `install`: a Kickstart file (`vm_install_kickstart`) as `ks.cfg` on a
/// small volume labelled `OEMDRV`, `oemdrv.iso` in the VM home, which
/// Anaconda reads without a boot parameter (vm.settings(5), UNATTENDED
/// INSTALLS). Attached like the cloud-init seed, on the seed controller.
public enum InstallModule: BuildCmdModule {
    public static let name = "install"
    static let drive = "vmtools-oemdrv"

    public static func build(_ c: inout QemuCommand) throws {
        guard let file = try c.vm.readableFile(SettingKey.installKickstart, home: c.home, environment: c.environment),
              let dir = c.runDirectory ?? c.home else { return }
        let text = try FileSystem.readTextIfExists(file, limit: 16 << 20) ?? ""
        let seed = SeedVolume(path: dir.appendingPathComponent(VMFileNames.kickstartVolume), label: "OEMDRV", files: [.init("ks.cfg", text)])
        if !seed.isCurrent { c.plan.seedVolumes.append(seed) }
        c.append("-drive", "file=\(qemuEscape(seed.path)),format=raw,if=none,id=\(drive),readonly=on,media=cdrom")
        if !c.argv.contains("virtio-scsi-pci,id=\(CloudInitModule.controller)") {
            c.append("-device", "virtio-scsi-pci,id=\(CloudInitModule.controller)")
        }
        c.append("-device", "scsi-cd,drive=\(drive),bus=\(CloudInitModule.controller).0")
    }
}
