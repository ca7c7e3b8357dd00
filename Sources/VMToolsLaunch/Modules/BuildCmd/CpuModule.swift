import VMToolsCore
import VMToolsQEMU

/// `cpu`: `-smp N -cpu MODEL`. Under TCG the `host` model cannot work, so it
/// becomes `max`, the richest model TCG emulates.
public enum CpuModule: BuildCmdModule {
    public static let name = "cpu"

    public static func build(_ c: inout QemuCommand) throws {
        let count = try c.vm.cpuCount()
        if let n = count { c.append("-smp", String(n)) }
        var model = try c.vm.cpuType()
        if model == "host", c.accelerator.kind == .tcg { model = "max" }
        if !model.isEmpty { c.append("-cpu", model) }
        c.plan.machine.cpus = count
        c.plan.machine.cpuModel = model.isEmpty ? nil : model
    }
}
