#if canImport(Glibc)
import Glibc
#endif

/// `snapshots/.resume` (vmsnap(1), RESUMING): the live snapshot a revert
/// of the stopped VM restored, whose RAM and devices the next `vmup` loads.
/// The file sits in the VM home, so anyone who could plant it is read
/// warily: a regular file, never through a link, a few bytes, a valid name.
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
        func unusable(_ why: String) -> ResumeMarker { ResumeMarker(path: path, name: nil, problem: why) }
        // A linked snapshots/ would put the marker, and its removal, elsewhere.
        guard !FileSystem.isSymlink(directory) else { return unusable("\(directory) is a symbolic link") }
        let fd: Int32
        do { fd = try FileSystem.openForReading(path, noFollow: true) } catch let e as VMToolsError {
            return unusable(e.message)
        } catch { return unusable("cannot read it") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return unusable("not a regular file") }
        // A name is at most SnapshotName.maxLength bytes and a newline.
        guard let bytes = FileSystem.readBytes(fd, at: 0, count: SnapshotName.maxLength + 2),
              bytes.count <= SnapshotName.maxLength + 1 else { return unusable("longer than a snapshot name") }
        var text = String(decoding: bytes, as: UTF8.self)
        if text.hasSuffix("\n") { text.removeLast() }
        do { try SnapshotName.check(text, home: home) } catch let e as VMToolsError {
            return unusable(e.message)
        } catch { return unusable("not a snapshot name") }
        return ResumeMarker(path: path, name: text, problem: nil)
    }

    /// Removes the marker (not what a link points to), after a start
    /// attempt; the caller holds the VM's lock.
    public func remove() {
        guard FileSystem.lexists(path), !FileSystem.isDirectory(path) || FileSystem.isSymlink(path) else { return }
        unlink(path)
        FileSystem.syncDirectory(path.deletingLastPathComponent)
    }
}
