import VMToolsCore
import VMToolsQEMU

/// The running VM's side of `Snapshotter` (vmsnap(1), LIVE SNAPSHOTS):
/// QMP jobs instead of `qemu-img`. `Snapshotter`'s public operations check
/// names, images and forks first, then call these when the VM runs.
extension Snapshotter {
    /// QMP on the VM when it runs (its pid file names a live QEMU); nil when
    /// it is stopped.
    func liveConnection() throws -> LiveSnapshot? {
        nil
    }

    func createLive(_ name: String, replace: Bool, live: LiveSnapshot) throws -> Snapshot {
        throw VMToolsError(.failure, vm.home, "live snapshots are not implemented yet")
    }

    func revertLive(_ name: String, live: LiveSnapshot) throws {
        throw VMToolsError(.failure, vm.home, "live snapshots are not implemented yet")
    }

    func deleteLive(_ name: String, live: LiveSnapshot) throws {
        throw VMToolsError(.failure, vm.home, "live snapshots are not implemented yet")
    }
}
