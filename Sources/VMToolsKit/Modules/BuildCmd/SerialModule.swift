/// `serial`: the guest's serial console goes to `serial.log` in the VM home;
/// in the foreground (`-i`) it is also on the terminal, multiplexed with the
/// monitor (Ctrl-A C switches).
public enum SerialModule: BuildCmdModule {
    public static let name = "serial"

    static func isEnabled(_ c: QemuCommand) -> Bool {
        ((try? ExtendedString.splitList(c.global.settings.value("cfg_modules_buildcmd"))) ?? []).contains(name)
    }

    public static func build(_ c: inout QemuCommand) throws {
        let log = c.home.map { _ in "./" + c.global.file("cfg_file_serial") }
        if !c.daemonize {
            var spec = "stdio,id=console0,mux=on,signal=off"
            if let log { spec += ",logfile=\(qemuEscape(log))" }
            c.append("-chardev", spec, "-serial", "chardev:console0", "-mon", "chardev=console0,mode=readline")
        } else if let log {
            c.append("-serial", "file:\(log)")
        }
    }
}
