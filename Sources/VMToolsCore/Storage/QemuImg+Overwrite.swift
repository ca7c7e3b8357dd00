extension QemuImg {
    /// `qemu-img convert -n`: writes `source`'s data into the existing qcow2
    /// `dest`, whose internal snapshots stay (vmmerge(1): a parent's UEFI
    /// variable store takes in its child's and keeps its snapshots). `dest`
    /// must be at least as large as `source`.
    public static func overwrite(_ dest: String, with source: String, environment: [String: String]) throws {
        try run(["convert", "-n", "-O", "qcow2", "--", source, dest], subject: dest, environment: environment)
    }
}
