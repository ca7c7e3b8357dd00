#if canImport(Glibc)
import Glibc
#endif

/// `snapshots/.resume` (vmsnap(1), RESUMING): the live snapshot a revert
/// of the stopped VM restored, whose RAM and devices the next `vmup` loads.
/// The file sits in the VM home, so anyone who could plant it is read
/// warily (`VMSnapshots.resumeMarker`); a bad one is noted and removed.
public struct ResumeMarker: Sendable, Equatable {
    /// `snapshots/.resume`.
    public var path: String
    /// The snapshot to resume; nil when the file is no usable marker.
    public var name: String?
    /// Why it is not usable, one line.
    public var problem: String?

    /// The marker of `home`, or nil when there is none (no side effect).
    public static func read(home: String) -> ResumeMarker? {
        let directory = home.appendingPathComponent(VMSnapshots.directoryName)
        let path = directory.appendingPathComponent(VMSnapshots.resumeName)
        guard FileSystem.lexists(path) else { return nil }
        // A linked snapshots/ would put the marker, and its removal, elsewhere.
        if FileSystem.isSymlink(directory) { return ResumeMarker(path: path, name: nil, problem: "\(directory) is a symbolic link") }
        // A regular file, not through a link, a few bytes, a valid name.
        do {
            guard let name = try VMSnapshots(home: home, disks: []).resumeMarker() else { return nil }
            return ResumeMarker(path: path, name: name, problem: nil)
        } catch let e as VMToolsError {
            return ResumeMarker(path: path, name: nil, problem: e.message)
        } catch {
            return ResumeMarker(path: path, name: nil, problem: "cannot read it")
        }
    }

    /// Removes the marker (not what a link points to), after a start
    /// attempt; the caller holds the VM's lock.
    public func remove() {
        guard FileSystem.lexists(path), !FileSystem.isDirectory(path) || FileSystem.isSymlink(path) else { return }
        unlink(path)
        FileSystem.syncDirectory(path.deletingLastPathComponent)
    }
}
