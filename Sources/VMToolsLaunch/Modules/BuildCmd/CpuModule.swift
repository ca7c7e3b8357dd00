import VMToolsCore
import VMToolsQEMU

/// `cpu`: `-smp N -cpu MODEL`. Under TCG the `host` model cannot work, so it
/// becomes `max`, the richest model TCG emulates.
public enum CpuModule: BuildCmdModule {
    public static let name = "cpu"

    public static func build(_ c: inout QemuCommand) throws {
        if let n = try c.vm.cpuCount() { c.append("-smp", String(n)) }
        var model = try c.vm.cpuType()
        if model == "host", c.accelerator.kind == .tcg { model = "max" }
        if !model.isEmpty { c.append("-cpu", model) }
    }
}
