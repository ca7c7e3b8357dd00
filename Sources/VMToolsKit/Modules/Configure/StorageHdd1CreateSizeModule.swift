/// `storage_hdd1_createsize`: a new VM without a first disk gets one,
/// `hdd.qcow2` in its home (40G unless the user says otherwise; 0 = none).
/// The size is used once to create the disk and never saved.
public enum StorageHdd1CreateSizeModule: ConfigureModule {
    public static let name = "storage_hdd1_createsize"

    public static func configure(_ c: inout Configuration) throws {
        guard let home = c.home, !c.settings.isYes("vm_storage_hdd1_enable") else { return }
        var size = try c.prompter.ask("Main hard-disk size", default: "40G", help: "A size such as 10G or 1T, or 0 for no disk.") { a in
            let u = a.uppercased()
            if u == "0" { return u }
            let digits = u.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, digits.first != "0" else { return nil }
            let rest = u.dropFirst(digits.count)
            return rest.isEmpty || ["M", "G", "T"].contains(String(rest)) ? u : nil
        }
        if size == "0" { return }
        if size.last?.isNumber == true {
            size += try c.prompter.ask("Megabytes, gigabytes or terabytes (M, G or T)", default: "G", help: "M, G or T.") { a in
                ["M", "G", "T"].contains(a.uppercased()) ? a.uppercased() : nil
            }
        }
        var path = home.appendingPathComponent("hdd.qcow2")
        var n = 1
        while FileSystem.exists(path) {
            path = home.appendingPathComponent("hdd_\(n).qcow2")
            n += 1
        }
        c.set("vm_storage_hdd1_backend", path, by: name)
        c.set("vm_storage_hdd1_enable", "yes", by: name)
        c.assign("vm_storage_hdd1_createsize", size, by: name)
    }
}
