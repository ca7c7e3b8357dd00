#if canImport(Glibc)
import Glibc
#endif

/// An `.ova` appliance: a tar archive holding an OVF descriptor and its
/// disks. The archive is unpacked into a private directory and the disk
/// found by walking it: a `tar -t` listing quotes odd names (`\.vmdk` is
/// listed as `\\.vmdk`), and names given back to tar are unquoted and
/// matched again, so no member name ever goes through tar's own syntax.
package enum OVA {
    /// Unpacks `archive` into a new directory in `directory`; returns that
    /// directory (the caller removes it) and the path of its one `.vmdk`.
    package static func extractDisk(_ archive: String, in directory: String) throws -> (directory: String, disk: String) {
        var template = Array(directory.appendingPathComponent(".vmtools-import.XXXXXX").utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw VMToolsError(.failure, directory, "cannot create a directory to unpack \(archive) in: \(FileSystem.errnoMessage())")
        }
        let dir = FileSystem.string(fromNulTerminated: template)
        do {
            // Run in the directory: tar unquotes a --directory value (a
            // backslash-n in it would become a newline). --force-local: a
            // colon in the archive's path never means a remote host.
            let x = try Subprocess("/bin/tar", ["--extract", "--no-same-owner", "--no-same-permissions", "--force-local", "--file", archive],
                                   workingDirectory: dir).run()
            guard x.status == 0 else {
                throw VMToolsError(.failure, archive, "cannot unpack: \(x.stderrText.trimmingTrailingWhitespace())")
            }
            let disks = ([dir] + FileSystem.subdirectories(dir)).flatMap { d in
                ((try? FileSystem.listDirectory(d)) ?? []).sorted(by: bytewiseLess).map { d.appendingPathComponent($0) }
            }.filter { $0.lowercased().hasSuffix(".vmdk") && isPlainFile($0) }
            guard disks.count == 1, let disk = disks.first else {
                throw VMToolsError(.failure, archive, disks.isEmpty ? "the .ova holds no .vmdk disk" : "the .ova holds several disks; extract them by hand")
            }
            return (dir, disk)
        } catch {
            FileSystem.removeTree(dir)
            throw error
        }
    }

    /// A regular file, not a link to one: the archive decides nothing outside its directory.
    static func isPlainFile(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }
}
