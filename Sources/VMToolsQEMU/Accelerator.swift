import VMToolsCore

#if canImport(Glibc)
import Glibc
#endif

/// Which accelerator a VM gets (`vm_qemu_accel`: auto, kvm or tcg).
///
/// `auto` takes KVM only where it really works: `/dev/kvm` usable and backed
/// by `kvm_intel`/`kvm_amd`. Nested `kvm_pvm` (seen on some cloud machines)
/// offers `/dev/kvm` but cannot run an ordinary guest — QEMU hangs with a
/// "KVM internal error" — so it counts as no KVM.
public struct Accelerator: Sendable, Equatable {
    public enum Kind: String, Sendable { case kvm, tcg }

    public var kind: Kind
    /// Why, for the notice printed when auto falls back to TCG.
    public var reason: String
    public var fellBack: Bool

    public init(kind: Kind, reason: String, fellBack: Bool = false) {
        self.kind = kind
        self.reason = reason
        self.fellBack = fellBack
    }

    public struct Host: Sendable, Equatable {
        public var deviceUsable: Bool
        public var hardwareModule: Bool
        public var pvm: Bool

        public static func probe() -> Host {
            Host(deviceUsable: access("/dev/kvm", R_OK | W_OK) == 0,
                 hardwareModule: FileSystem.exists("/sys/module/kvm_intel") || FileSystem.exists("/sys/module/kvm_amd"),
                 pvm: FileSystem.exists("/sys/module/kvm_pvm"))
        }

        var whyNot: String? {
            if pvm { return "/dev/kvm is nested kvm_pvm, which cannot run ordinary guests" }
            if !FileSystem.exists("/dev/kvm") { return "there is no /dev/kvm" }
            if !deviceUsable { return "/dev/kvm is not accessible (is the user in the kvm group?)" }
            if !hardwareModule { return "neither kvm_intel nor kvm_amd is loaded" }
            return nil
        }
    }

    public static func choose(_ settings: SettingsTable, host: Host = .probe()) throws -> Accelerator {
        let setting = SettingKey.qemuAccel
        switch try VMSettings(settings).qemuAccel() {
        case .kvm:
            guard host.deviceUsable else {
                throw VMToolsError(.failure, setting, "kvm was asked for, but /dev/kvm is not usable here; use vm_qemu_accel=auto or tcg")
            }
            return Accelerator(kind: .kvm, reason: "forced by vm_qemu_accel=kvm", fellBack: false)
        case .tcg:
            return Accelerator(kind: .tcg, reason: "forced by vm_qemu_accel=tcg", fellBack: false)
        case .auto:
            if let why = host.whyNot {
                return Accelerator(kind: .tcg, reason: why, fellBack: true)
            }
            return Accelerator(kind: .kvm, reason: "KVM is available", fellBack: false)
        }
    }
}
