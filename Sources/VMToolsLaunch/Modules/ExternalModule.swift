import VMToolsCore

/// A module replaced or added by an executable file (vmtools(7),
/// CUSTOMIZATION). The protocol:
///
/// - It runs as `FILE CATEGORY NAME`, as the invoking user, in the VM home
///   (when there is one), with the terminal as stdin and stderr (prompts and
///   messages go there).
/// - Its environment holds every resolved `cfg_*` and `vm_*` setting under
///   its own name, plus `VMTOOLS_CATEGORY`, `VMTOOLS_MODULE`, `VMTOOLS_HOME`
///   (empty for a bare image) and, per category, `VMTOOLS_QEMU_ARGV` and
///   `VMTOOLS_DRY_RUN` (buildcmd) or `VMTOOLS_SOURCE`, `VMTOOLS_TARGET`,
///   `VMTOOLS_ACTION`, `VMTOOLS_KEEP_UNIQUE`, `VMTOOLS_SNAPSHOT` (clone).
/// - It answers on stdout, one item per line: QEMU arguments to append
///   (buildcmd); `NAME=VALUE` settings (configure/settings: kept unless the
///   command line set them, `override NAME=VALUE` replaces, `assign
///   NAME=VALUE` is for this run only; clone: written into the new VM);
///   `template NAME` (configure/templates). Empty lines and `#` comments are
///   skipped.
/// - A non-zero exit status aborts the command, which undoes what it did.
public struct ExternalModule: Equatable, Sendable {
    public var path: String
    public var category: ModuleCategory
    public var name: String

    /// Runs the module; returns its output lines.
    func run(settings: SettingsTable, home: String?, environment: [String: String], extra: [String: String] = [:]) throws -> [String] {
        var env = environment
        for n in settings.names where n.hasPrefix("vm_") || n.hasPrefix("cfg_") { env[n] = settings.value(n) }
        env["VMTOOLS_CATEGORY"] = category.rawValue
        env["VMTOOLS_MODULE"] = name
        env["VMTOOLS_HOME"] = home ?? ""
        env.merge(extra) { $1 }
        var process = Subprocess(path, [category.rawValue, name])
        process.environment = env
        process.workingDirectory = home
        try Interrupt.check()
        let (status, output) = try process.runCapturingStdout()
        guard status == 0 else {
            throw VMToolsError(.failure, path, "the \(category.rawValue) module '\(name)' failed (exit status \(status)); nothing it was part of was kept")
        }
        var lines = String(decoding: output, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        return lines
    }

    /// One setting line of the output: kind, name, value.
    enum SettingKind: String { case set, override, assign }

    func parseSetting(_ line: String, number: Int, defaultKind: SettingKind) throws -> (SettingKind, String, String)? {
        let trimmed = line.trimmingTrailingWhitespace()
        if trimmed.isEmpty || trimmed.hasPrefix("#") { return nil }
        var kind = defaultKind
        var rest = Substring(line)
        for k in [SettingKind.override, .assign, .set] where rest.hasPrefix(k.rawValue + " ") {
            kind = k
            rest = rest.dropFirst(k.rawValue.count + 1)
        }
        guard let eq = rest.firstIndex(of: "="), SettingName.isSetting(rest[..<eq]) else {
            throw VMToolsError(.failure, path, "output line \(number): expected NAME=VALUE, got '\(line)'")
        }
        let name = String(rest[..<eq])
        guard name.hasPrefix("vm_") || kind == .assign else {
            throw VMToolsError(.failure, path, "output line \(number): \(name): only vm_* settings can be set for a VM")
        }
        return (kind, name, String(rest[rest.index(after: eq)...]))
    }
}
