import VMToolsCore

/// `qmp`: the machine monitor (QMP) vmtools itself uses to control the VM
/// (`vmdown`), beside the human monitor. Relative path, as for `monitor`.
public enum QmpModule: BuildCmdModule {
    public static let name = "qmp"

    public static func build(_ c: inout QemuCommand) throws {
        guard let dir = c.runDirectory else { return }
        let socket = c.global.fileNames.qmp
        MonitorModule.staleSocket(dir.appendingPathComponent(socket), &c)
        c.append("-qmp", "unix:./\(qemuEscape(socket)),server=on,wait=off")
    }
}
