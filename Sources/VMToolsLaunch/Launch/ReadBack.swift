import VMToolsCore
import VMToolsQEMU

/// After a daemonised QEMU has started: the plan's facts read back
/// (LaunchPlan.Fact), what QEMU chose asked over QMP, announced, and
/// ssh.config written for the first forward to guest TCP port 22
/// (vmup(1)). QEMU runs on whatever fails here.
struct ReadBack {
    let plan: LaunchPlan
    let name: String
    let console: Console
    /// Where the guest's SSH forward listens, once QEMU said (`vmup -w` waits on it).
    private(set) var sshEndpoint: (address: String, port: Int)?

    init(_ plan: LaunchPlan, name: String, console: Console) {
        self.plan = plan
        self.name = name
        self.console = console
    }

    mutating func run(qmp: String) {
        for fact in plan.readBack {
            switch fact {
            case .vncPort(let text):
                if let url = QMPClient.vncURL(socket: qmp) {
                    console.notice("\(text) \(url)")
                } else {
                    console.notice("\(text) VNC (QEMU did not say which port; see vmps)")
                }
            case .forwards(let ssh):
                forwards(qmp: qmp, ssh: ssh)
            }
        }
    }

    /// The forwards' real ports: QEMU's user-mode ones over QMP, a helper's
    /// as the plan has them (chosen by the executor).
    private mutating func forwards(qmp: String, ssh: LaunchPlan.SSHPlan?) {
        var forwards: [LiveForward] = []
        if plan.userForwards {
            if let live = QMPClient.forwards(socket: qmp) {
                forwards = live
            } else {
                console.notice("\(name): port forwards (QEMU did not say which ports; see vminfo)")
            }
        }
        forwards += plan.helperForwards.map(LiveForward.init)
        for f in forwards { console.notice("\(name): forwarding \(f.description)") }
        guard let f = forwards.first(where: { $0.proto == "tcp" && $0.guestPort == 22 }) else { return }
        sshEndpoint = (f.connectAddress, f.hostPort)
        // A read-only home (Docs/vmup.1) gets none.
        guard let ssh, let home = ssh.home, FileSystem.isWritable(home) else { return }
        writeSSHConfig(ssh, home: home, forward: f)
    }

    private func writeSSHConfig(_ ssh: LaunchPlan.SSHPlan, home: String, forward f: LiveForward) {
        let config = SSHConfig(name: ssh.name, home: home, address: f.connectAddress, port: f.hostPort,
                               user: ssh.user, identityFile: ssh.identityFile, instanceID: ssh.instanceID)
        do {
            try config.write()
            console.notice("\(name): \(SSHConfig.command(home: home, name: ssh.name))")
        } catch let e as VMToolsError {
            console.warning(e.description)
        } catch {
            console.warning("\(config.path): \(error)")
        }
    }
}
