import VMToolsCore

/// `storage_hdd1_createsize`: a new VM without a first disk gets one,
/// `hdd.qcow2` in its home (40G unless the user says otherwise; 0 = none).
/// The size is used once to create the disk and never saved.
public enum StorageHdd1CreateSizeModule: ConfigureModule {
    public static let name = "storage_hdd1_createsize"

    public static func configure(_ c: inout Configuration) throws {
        let keys = SettingKey.hdd(1)
        guard let home = c.home, !c.vm.hdd(1).enabled else { return }
        // `-o vm_storage_hdd1_createsize=…` answers the question.
        let given = c.vm.hdd(1).createsizeText
        var size = given
        if given.isEmpty || c.settings.provenance(keys.createsize).map({ if case .commandLine = $0 { false } else { true } }) ?? true {
            size = try c.prompter.askSize("Main hard-disk size", default: given.isEmpty ? "40G" : given, units: "MGT",
                                          help: "A size such as 10G or 1T, or 0 for no disk.", allowZero: true)
        }
        if size == "0" { return }
        let path = FileSystem.newPath(in: home, base: "hdd", suffix: ".qcow2")
        c.set(keys.backend, path, by: name)
        c.set(keys.enable, "yes", by: name)
        c.assign(keys.createsize, size, by: name)
    }
}
