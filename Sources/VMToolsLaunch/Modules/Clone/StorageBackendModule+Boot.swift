import VMToolsCore

/// The direct kernel boot files (vm.settings(5)) follow the disks: a fork
/// inherits its parent's settings, whose relative paths are taken from the
/// parent's home, so it needs nothing; a copy takes the files that lie in
/// the VM's home (an autonomous copy, in its ancestors' homes too) and
/// names the others by absolute path, so none is left pointing at nothing.
extension StorageBackendModule {
    static func cloneBootFiles(_ c: inout CloneJob) throws {
        guard c.action != .fork else { return }
        let vm = VMSettings(c.source.settings)
        for setting in [SettingKey.bootKernel, SettingKey.bootInitrd] {
            let value = c.value(setting)
            guard !value.isEmpty, c.overrides.allSatisfy({ $0.name != setting }) else { continue }
            // A plain copy keeps its parent link: inherited lines still resolve there.
            if c.action == .copy, case let .vmFile(_, _, depth)? = c.source.settings.provenance(setting), depth > 0 { continue }
            let source = vm.bootPath(setting, home: c.source.home, environment: c.environment)
            let homes = c.action == .autonomous ? [c.source.home] + c.source.ancestors : [c.source.home]
            if homes.contains(source.deletingLastPathComponent), FileSystem.isRegularFile(source) {
                let dest = FileSystem.newPath(in: c.destination, base: source.lastPathComponent)
                try c.transaction.record(.remove(dest))
                try SparseCopy.copy(source, to: dest, progress: nil)
                c.override(setting, dest.lastPathComponent)
            } else if !value.hasPrefix("/"), !value.hasPrefix("~/") {
                c.override(setting, source)
            }
        }
    }
}
