import VMToolsCore

/// Snapshots of a running VM over QMP (vmsnap(1), LIVE SNAPSHOTS): the
/// `snapshot-save`, `snapshot-load` and `snapshot-delete` jobs (QEMU ≥ 6.0).
/// The guest is paused only while QEMU writes its RAM and devices.
public struct LiveSnapshot {
    public let qmp: QMPClient
    /// The VM home, for errors.
    public let home: String

    public init(qmp: QMPClient, home: String) {
        self.qmp = qmp
        self.home = home
    }

    /// The writable block node of each image, by path: what the jobs name.
    /// Throws naming the image when QEMU does not have it open read-write
    /// (a VM started with -s or -r, or not with this disk).
    public func nodes(for images: [String]) throws -> [String] {
        throw VMToolsError(.failure, home, "live snapshots are not implemented yet")
    }

    /// Saves `tag` on every node, the RAM and devices in `vmstate`'s image.
    public func save(_ tag: String, vmstate: String, devices: [String], timeout: Double) throws {
        throw VMToolsError(.failure, home, "live snapshots are not implemented yet")
    }

    /// Loads `tag`: the VM resumes where it was saved.
    public func load(_ tag: String, vmstate: String, devices: [String], timeout: Double) throws {
        throw VMToolsError(.failure, home, "live snapshots are not implemented yet")
    }

    /// Deletes `tag` from every node that holds it.
    public func delete(_ tag: String, devices: [String], timeout: Double) throws {
        throw VMToolsError(.failure, home, "live snapshots are not implemented yet")
    }
}
