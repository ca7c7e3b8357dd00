/// Disk provisioning and growth, direct kernel boot (vm.settings(5)).
extension SettingKey {
    public static let bootKernel = "vm_boot_kernel"
    public static let bootInitrd = "vm_boot_initrd"
    public static let bootAppend = "vm_boot_append"
}

extension SettingKey.DriveKeys {
    public var preallocation: String { prefix + "_preallocation" }
    public var size: String { prefix + "_size" }
}

extension VMSettings {
    /// `vm_boot_kernel`, `vm_boot_initrd`, `vm_boot_append` as QEMU takes them.
    public struct DirectBoot: Sendable, Equatable {
        public var kernel: String
        public var initrd: String?
        public var append: String?
    }

    /// The direct kernel boot, nil when no kernel is set. Relative paths are
    /// taken from the home whose `vm.settings` set them (a fork inherits its
    /// parent's kernel), else from `home` (a bare boot: the current
    /// directory), as storage backends are.
    public func directBoot(home: String?, environment: [String: String]) throws -> DirectBoot? {
        let kernel = table.value(SettingKey.bootKernel), initrd = table.value(SettingKey.bootInitrd)
        let append = table.value(SettingKey.bootAppend)
        guard !kernel.isEmpty else {
            if !initrd.isEmpty { throw invalid(SettingKey.bootInitrd, "an initrd needs a kernel (\(SettingKey.bootKernel))") }
            if !append.isEmpty { throw invalid(SettingKey.bootAppend, "a kernel command line needs a kernel (\(SettingKey.bootKernel))") }
            return nil
        }
        func file(_ name: String) throws -> String {
            let path = bootPath(name, home: home, environment: environment)
            guard FileSystem.isRegularFile(path), FileSystem.isReadable(path) else { throw invalid(name, "no readable file at \(path)") }
            return path
        }
        return DirectBoot(kernel: try file(SettingKey.bootKernel), initrd: initrd.isEmpty ? nil : try file(SettingKey.bootInitrd),
                          append: append.isEmpty ? nil : append)
    }

    /// The path a boot file setting names, absolute.
    public func bootPath(_ name: String, home: String?, environment: [String: String]) -> String {
        var base = home ?? FileSystem.currentDirectory()
        if case let .vmFile(path, _, _)? = table.provenance(name) { base = path.deletingLastPathComponent }
        return StorageBackend(table.value(name)).path(home: base, environment: environment)
    }
}

extension VMSettings.Drive {
    /// qemu-img's `preallocation` for a new disk: thin (`off`) or thick.
    public enum Preallocation: String, Sendable { case off, metadata, falloc, full }

    /// `vm_storage_hddN_preallocation`: off (or empty), metadata, falloc or full.
    public func preallocation() throws -> Preallocation {
        let v = settings.table.value(keys.preallocation)
        if v.isEmpty { return .off }
        guard let p = Preallocation(rawValue: v) else { throw settings.invalid(keys.preallocation, "expected off, metadata, falloc or full") }
        return p
    }

    /// `vm_storage_hddN_size`: the size an existing disk is grown to; nil for none.
    public func size() throws -> Size? {
        let v = settings.table.value(keys.size)
        guard !v.isEmpty else { return nil }
        guard let s = Size(v, units: "MGT") else { throw settings.invalid(keys.size, "expected a size such as 512M, 40G or 1T") }
        guard s.bytes != nil else { throw settings.invalid(keys.size, "too large: more bytes than 64 bits hold") }
        return s
    }
}

extension Size {
    /// The size in bytes; nil when it does not fit an Int.
    public var bytes: Int? {
        guard let m = mebibytes else { return nil }
        let (b, overflow) = m.multipliedReportingOverflow(by: 1 << 20)
        return overflow ? nil : b
    }
}
