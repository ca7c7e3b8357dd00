import VMToolsCore

/// `share`: host folders shared with the guest over virtio-9p
/// (vm.settings(5), SHARED FOLDERS). 9p needs no root and no helper
/// process; virtiofs would need a virtiofsd running as the user, which
/// Debian 12's (QEMU's C one, `setgroups() failed` without root) cannot,
/// and vmtools does not start one yet: `auto` says so and takes 9p.
public enum ShareModule: BuildCmdModule {
    public static let name = "share"

    public static func build(_ c: inout QemuCommand) throws {
        for share in try c.vm.shares(home: c.home, environment: c.environment) {
            let keys = SettingKey.share(share.id)
            switch share.transport {
            case .virtiofs:
                throw c.invalid(keys.transport, "virtiofs needs a virtiofsd running as you, which vmtools does not start (\(virtiofsdNote(c))); use 9p or auto")
            case .auto:
                c.notices.append("\(keys.prefix): 9p, not virtiofs (\(virtiofsdNote(c)))")
            case .ninep: break
            }
            let id = "vmtools-\(keys.prefix.dropFirst(3))"
            // mapped-xattr keeps guest owners and modes in xattrs, so a
            // guest's chown works without root on the host; a read-only
            // share writes nothing, so `none` passes the host's own.
            let security = share.mode == .rw ? "security_model=mapped-xattr" : "security_model=none,readonly=on"
            c.append("-fsdev", "local,id=\(id),path=\(qemuEscape(share.path)),\(security)",
                     "-device", "virtio-9p-pci,fsdev=\(id),mount_tag=\(share.tag)")
            c.plan.machine.shares.append(share)
        }
    }

    /// Why virtiofs is not used, naming the virtiofsd found, if any.
    static func virtiofsdNote(_ c: QemuCommand) -> String {
        let found = ["/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd"].first { FileSystem.isRegularFile($0) }
            ?? Subprocess.which("virtiofsd", path: c.environment["PATH"])
        guard let found else { return "no virtiofsd is installed" }
        return "\(found) is not started by vmtools; QEMU's C virtiofsd needs root"
    }
}
