#if canImport(Glibc)
import Glibc
#endif

/// A private directory an import or export works in (`.vmtools-import.*`
/// beside the new disk, `.vmtools-export.*` beside the new `.ova`): made
/// 0700 by mkdtemp and flocked while its command runs, so that vmfix -b
/// (vmfix(1)) tells a live one from what a killed command left.
package final class WorkDirectory: Sendable {
    package static let importPrefix = ".vmtools-import."
    package static let exportPrefix = ".vmtools-export."

    package let path: String
    private let fd: Int32

    /// A new directory `prefix` + six random characters in `dir`; `purpose` says what for in an error.
    package init(in dir: String, prefix: String, purpose: String) throws {
        var template = Array(dir.appendingPathComponent(prefix + "XXXXXX").utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw VMToolsError(.failure, dir, "cannot create a directory to \(purpose): \(FileSystem.errnoMessage())")
        }
        path = FileSystem.string(fromNulTerminated: template)
        fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd >= 0 { flock(fd, LOCK_EX | LOCK_NB) }
    }

    /// Removes the directory and what it holds.
    package func remove() { FileSystem.removeTree(path) }

    deinit { if fd >= 0 { close(fd) } }

    /// Whether `name` is one of these directories' names.
    package static func isWorkName(_ name: String) -> Bool {
        name.hasPrefix(importPrefix) || name.hasPrefix(exportPrefix)
    }

    /// Whether a running command still holds the directory at `path`.
    package static func isInUse(_ path: String) -> Bool { FileSystem.isFlocked(path, followingLinks: false) }
}
