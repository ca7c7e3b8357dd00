/// What the tree commands and vminfo ask before they read a snapshot table
/// (vmsnap(1)): the qcow2 header's snapshot count, one read of the head.
/// An image whose header counts none costs no table read, so a VM without
/// snapshots costs vminfo, vmfork and vmcp next to nothing.
extension VMSnapshots {
    /// `nb_snapshots` of a qcow2 image; 0 for any other file or none.
    public static func headerCount(_ path: String) -> Int {
        guard FileSystem.isRegularFile(path) else { return 0 }
        return ImageProbe(path)?.qcow2SnapshotCount ?? 0
    }

    /// Some image of the VM counted a snapshot in its header when `disks`
    /// probed it (no second read).
    public var anyInHeaders: Bool { capable.contains { $0.headerCount > 0 } }

    /// The snapshots, or none without reading a table when no header counts any.
    public func listIfAny() throws -> [Snapshot] {
        anyInHeaders ? try list() : []
    }
}
