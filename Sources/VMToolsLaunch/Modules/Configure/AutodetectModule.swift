import VMToolsCore

#if canImport(Glibc)
import Glibc
#endif

/// `autodetect` (configure/templates): a macOS installer in CD-ROM 1 (an
/// Apple partition map naming an `Apple_HFS` or `BOOTCAMP` partition) adds
/// the `macos` template; an image that can only boot by UEFI sets
/// `vm_firmware=uefi` (vmcreate(1)).
public enum AutodetectModule: ConfigureModule {
    public static let name = "autodetect"

    public static func configure(_ c: inout Configuration) throws {
        detectFirmware(&c)
        let value = c.vm.cdrom(1).backend
        guard !value.isEmpty else { return }
        let b = StorageBackend(value)
        guard !b.isRemote, isMacInstaller(b.path(home: c.home, environment: c.environment)) else { return }
        if !c.templates.contains("macos") { c.templates.append("macos") }
        c.console.trace("macOS installer detected: template macos added")
    }

    /// Apple partition map entries ("PM") in the first blocks name the partition types.
    static func isMacInstaller(_ path: String) -> Bool {
        guard let fd = try? FileSystem.openForReading(path) else { return false }
        defer { close(fd) }
        guard let head = FileSystem.readBytes(fd, at: 0, count: 64 * 512), !head.isEmpty else { return false }
        for block in stride(from: 512, to: head.count - 512, by: 512) where head[block] == 0x50 && head[block + 1] == 0x4D {
            let type = String(decoding: head[(block + 48)..<(block + 80)].prefix { $0 != 0 }, as: UTF8.self)
            if type == "Apple_HFS" || type.contains("BOOTCAMP") { return true }
        }
        return false
    }

    /// Disk 1 boots first when it has something to boot, else CD-ROM 1; a
    /// firmware asked for (`-o`, the configuration: uefi-secure) is kept, and
    /// an image BIOS can boot keeps bios (a hybrid ISO, a BIOS boot partition).
    static func detectFirmware(_ c: inout Configuration) {
        guard (try? c.vm.firmware()) == .bios, !c.recorded.contains(where: { $0.name == SettingKey.firmware }) else { return }
        for drive in [c.vm.hdd(1), c.vm.cdrom(1)] where !drive.backend.isEmpty {
            let b = StorageBackend(drive.backend)
            guard !b.isRemote else { continue }
            let path = b.path(home: c.home, environment: c.environment)
            switch BootFirmware.of(path) {
            case .none: continue
            case .bios: return
            case .uefiOnly:
                c.set(SettingKey.firmware, VMSettings.Firmware.uefi.rawValue, by: name)
                c.console.info("\(path): boots only by UEFI: \(SettingKey.firmware)=uefi")
                return
            }
        }
    }
}
