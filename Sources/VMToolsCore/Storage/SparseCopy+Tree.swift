#if canImport(Glibc)
import Glibc
#endif

extension SparseCopy {
    /// A directory's files and sub-directories with their modes (a TPM's
    /// secrets stay 0600), to a `to` that must not exist; symbolic links,
    /// sockets and other special files are run-time leftovers, not copied.
    package static func copyTree(_ from: String, to: String) throws {
        guard mkdir(to, (FileSystem.mode(from) ?? 0o700) & 0o7777) == 0 else {
            throw VMToolsError(.failure, to, "cannot create: \(FileSystem.errnoMessage())")
        }
        for entry in try FileSystem.listDirectory(from).sorted(by: bytewiseLess) {
            let src = from.appendingPathComponent(entry), dst = to.appendingPathComponent(entry)
            if FileSystem.isSymlink(src) { continue }
            if FileSystem.isDirectory(src) {
                try copyTree(src, to: dst)
            } else if FileSystem.isRegularFile(src) {
                try copy(src, to: dst)
            }
        }
        FileSystem.syncDirectory(to)
    }
}
