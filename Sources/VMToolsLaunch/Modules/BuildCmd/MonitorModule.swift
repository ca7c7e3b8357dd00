import VMToolsCore

/// `monitor`: the human monitor (HMP) that `vmmon` attaches to. The socket
/// path is relative to QEMU's working directory (the VM home or its run-time
/// directory), so deep homes never hit the ~108-byte socket path limit.
public enum MonitorModule: BuildCmdModule {
    public static let name = "monitor"

    public static func build(_ c: inout QemuCommand) throws {
        if !c.daemonize {
            // In the foreground the serial module muxes the monitor onto the terminal.
            if !SerialModule.isEnabled(c) { c.append("-monitor", "stdio") }
            return
        }
        guard let dir = c.runDirectory else {
            c.append("-monitor", "none")
            return
        }
        let socket = c.global.fileNames.monitor
        staleSocket(dir.appendingPathComponent(socket), &c)
        c.append("-monitor", "unix:./\(qemuEscape(socket)),server=on,wait=off")
    }

    /// A socket left by a VM that stopped (QEMU cannot remove a relative
    /// socket after it changes to /): the executor removes it. The caller
    /// checked the VM is not running.
    static func staleSocket(_ path: String, _ c: inout QemuCommand) {
        if FileSystem.lexists(path) { c.plan.filesToRemove.append(path) }
    }
}
