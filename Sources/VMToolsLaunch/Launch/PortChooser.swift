import VMToolsCore

/// The executor's port choice (LaunchPlan.PortChoice): each placeholder's
/// value, worked out right before QEMU starts from the plan's typed rule
/// alone (Docs/ARCHITECTURE.md, "The launch pipeline"). The window for a
/// race is this process's start-up of QEMU and its helpers.
enum PortChooser {
    /// Name → port. The kernel's ports stay bound until every one is
    /// chosen, so no two are the same.
    static func choose(_ choices: [LaunchPlan.PortChoice], command: QemuCommand, vmName: String) throws -> [String: String] {
        var values: [String: String] = [:]
        var held = Ports.Held()
        defer { held.release() }
        for c in choices {
            switch c.rule {
            case .firstFree(let iface, let lowest):
                guard let address = Ports.resolve(iface) else { throw command.invalid(c.setting, "cannot resolve this address or host name") }
                guard let port = Ports.firstFree(from: lowest, address: address) else { throw command.invalid(c.setting, "no free port from \(lowest)") }
                values[c.name] = String(port)
            case .kernel(let f):
                let what = f.description
                switch held.bindAny(address: f.address, tcp: f.proto == .tcp) {
                case .success(let port): values[c.name] = String(port)
                case .failure(let e) where !e.bound:
                    throw VMToolsError(.failure, vmName, "cannot choose a port for \(what): \(e.message)")
                case .failure(let e):
                    throw command.invalid(c.setting, "no free port for \(what): \(e.message)")
                }
            }
        }
        return values
    }
}
