import VMToolsQEMU

/// `cpu`: `-smp N -cpu MODEL`. Under TCG the `host` model cannot work, so it
/// becomes `max`, the richest model TCG emulates.
public enum CpuModule: BuildCmdModule {
    public static let name = "cpu"

    public static func build(_ c: inout QemuCommand) throws {
        let count = c.value("vm_cpu_count")
        if !count.isEmpty {
            guard let n = Int(count), n > 0, count.allSatisfy(\.isASCII) else { throw c.invalid("vm_cpu_count", "expected a positive number") }
            c.append("-smp", String(n))
        }
        var model = c.value("vm_cpu_type")
        if model == "host", c.accelerator.kind == .tcg { model = "max" }
        if !model.isEmpty { c.append("-cpu", model) }
    }
}
