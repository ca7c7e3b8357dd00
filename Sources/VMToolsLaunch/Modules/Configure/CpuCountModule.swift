import VMToolsCore

#if canImport(Glibc)
import Glibc
#endif

/// `cpu_count`: asks for the number of virtual CPUs.
public enum CpuCountModule: ConfigureModule {
    public static let name = "cpu_count"

    public static func configure(_ c: inout Configuration) throws {
        guard !c.prompter.assumeYes else { return }
        let host = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        let current = c.value(SettingKey.cpuCount)
        let answer = try c.prompter.ask("Number of vCPUs", default: current,
                                        help: "A number from 1 to \(host), the host's online CPUs.") { a in
            guard let n = Int(a), n >= 1, a.first != "0", a.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            return String(n)
        }
        if answer != current { c.set(SettingKey.cpuCount, answer, by: name) }
    }
}
