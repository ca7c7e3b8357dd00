import VMToolsCore

/// `serial`: the guest's serial console. With `vm_serial_log=yes` it goes to
/// `cfg_file_serial` in the VM home; in the foreground (`-i`) it is on the
/// terminal, multiplexed with the monitor (Ctrl-A C switches), and logged
/// too when asked. Without the setting a boot adds no file to the home
/// (vm.settings(5)): QEMU keeps its default serial port.
public enum SerialModule: BuildCmdModule {
    public static let name = "serial"

    static func isEnabled(_ c: QemuCommand) -> Bool {
        ((try? c.global.typed.moduleList(SettingKey.modulesBuildcmdList)) ?? []).contains(name)
    }

    public static func build(_ c: inout QemuCommand) throws {
        let log = try c.vm.serialLog() && c.home != nil ? "./" + c.global.fileNames.serial : nil
        // A fact of the plan: the executor makes the file 0600 before QEMU opens it.
        if log != nil { c.plan.serialLog = c.global.fileNames.serial }
        // Relative to QEMU's working directory, the run directory.
        c.plan.machine.serial = .init(log: log.flatMap { _ in (c.runDirectory ?? c.home)?.appendingPathComponent(c.global.fileNames.serial) },
                                      console: !c.daemonize)
        if !c.daemonize {
            var spec = "stdio,id=console0,mux=on,signal=off"
            if let log { spec += ",logfile=\(qemuEscape(log))" }
            c.append("-chardev", spec, "-serial", "chardev:console0", "-mon", "chardev=console0,mode=readline")
        } else if let log {
            c.append("-serial", "file:\(qemuEscape(log))")
        }
    }
}
