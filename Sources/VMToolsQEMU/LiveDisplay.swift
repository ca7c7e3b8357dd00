/// The display of a running VM whose VNC port QEMU chose itself
/// (`vnc=HOST:N,to=M`, see DisplayModule): its command line only gives the
/// range, so the port is asked over the VM's QMP socket, and only then.
extension QemuProcess {
    /// True when argv leaves the VNC port to QEMU.
    public var choosesVNCPort: Bool {
        guard let d = argument(after: "-display") else { return false }
        let options = Self.splitOptions(d)
        return options[0].hasPrefix("vnc=") && options.contains { $0.hasPrefix("to=") }
    }

    /// `display`, with the real VNC port when QEMU chose it; `vnc://HOST:?`
    /// when the VM has no QMP socket to ask or it does not answer.
    public func liveDisplay(home: String?) -> String {
        guard choosesVNCPort else { return display }
        if let qmp = qmpSocket(home: home), let url = QMPClient.vncURL(socket: qmp, timeout: 1) {
            return url
        }
        let d = display
        guard let colon = d.lastIndex(of: ":") else { return d }
        return d[..<colon] + ":?"
    }
}
