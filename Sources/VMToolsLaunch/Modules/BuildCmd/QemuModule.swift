import VMToolsCore
import VMToolsQEMU

/// `qemu`: the binary, `vm_qemu_params`, the accelerator, `-pidfile`, `-daemonize`.
public enum QemuModule: BuildCmdModule {
    public static let name = "qemu"

    public static func build(_ c: inout QemuCommand) throws {
        let arch = try c.vm.qemuArch()
        let binary = c.global.typed.qemuCommandPrefix + arch
        // An absolute binary is taken as written (the executor checks it
        // before starting it): a plan can be built where QEMU is not installed.
        // An export describes the machine for another host, which has its own QEMU.
        let path = binary.hasPrefix("/") ? binary : Subprocess.which(binary, path: c.environment["PATH"]) ?? (c.export ? binary : nil)
        guard let path else {
            throw VMToolsError(.failure, binary, "not found in PATH (Debian: apt-get install qemu-system-x86)")
        }
        var params = try c.vm.qemuParams()
        // -enable-kvm cannot work without KVM: QEMU fails or hangs.
        if c.accelerator.kind == .tcg, let k = params.firstIndex(of: "-enable-kvm") {
            params.remove(at: k)
            c.notices.append("-enable-kvm dropped from vm_qemu_params (no KVM)")
        }
        c.argv.append(path)
        c.argv += params
        // A forward in raw QEMU arguments is read back like the networking module's own.
        for p in params { c.plan.notePassed(netdev: p) }
        c.plan.machine.arch = arch
        c.plan.machine.binary = path
        c.plan.machine.accelerator = c.accelerator.kind
        c.plan.machine.daemonized = c.daemonize
        c.plan.machine.extraParams = params
        let machine = try FirmwareModule.machineOptions(c)
        c.plan.machine.machineType = machine.type
        c.plan.machine.machineOptions = machine.others
        if !params.contains("-accel") && !params.contains("-enable-kvm") && !params.contains(where: { $0.contains("accel=") }) {
            c.append("-accel", c.accelerator.kind.rawValue)
        }
        if let dir = c.runDirectory {
            c.append("-pidfile", dir.appendingPathComponent(c.global.fileNames.pid))
        }
        if c.daemonize { c.append("-daemonize") }
    }
}
