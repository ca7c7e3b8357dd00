#if canImport(Glibc)
import Glibc
#endif

/// An `.ova` appliance: a tar archive holding an OVF descriptor and its
/// disks. The archive is unpacked into a private directory and the files
/// found by walking it: a `tar -t` listing quotes odd names (`\.vmdk` is
/// listed as `\\.vmdk`), and names given back to tar are unquoted and
/// matched again, so no member name ever goes through tar's own syntax.
package enum OVA {
    /// Unpacks `archive` into a new directory in `directory`; its descriptor
    /// (when it has one) gives the disks and their order, else its one `.vmdk`.
    package static func extract(_ archive: String, in directory: String) throws -> Appliance {
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
            let files = ([dir] + FileSystem.subdirectories(dir)).flatMap { d in
                ((try? FileSystem.listDirectory(d)) ?? []).sorted(by: bytewiseLess).map { d.appendingPathComponent($0) }
            }.filter { isPlainFile($0) }
            if let ovf = files.first(where: { $0.lowercased().hasSuffix(".ovf") && $0.deletingLastPathComponent == dir }) {
                // Whatever its name, a manifest in the archive is checked.
                let manifests = files.filter { $0.lowercased().hasSuffix(".mf") && $0.deletingLastPathComponent == dir }
                var a = try readDescriptor(ovf, in: dir, subject: archive, manifests: manifests)
                a.directory = dir
                return a
            }
            let disks = files.filter { $0.lowercased().hasSuffix(".vmdk") }
            guard disks.count == 1, let disk = disks.first else {
                throw VMToolsError(.failure, archive, disks.isEmpty ? "the .ova holds no .vmdk disk" : "the .ova holds several disks and no descriptor; extract them by hand")
            }
            return Appliance(descriptor: nil, disks: [disk], directory: dir)
        } catch {
            FileSystem.removeTree(dir)
            throw error
        }
    }

    /// Reads an OVF descriptor whose files are in `dir`, checking them
    /// against the manifest beside it (same name, `.mf`) when there is one.
    /// `subject` (the `.ova`, else the descriptor) is what errors name.
    package static func readDescriptor(_ path: String, in dir: String, subject: String? = nil, manifests: [String]? = nil) throws -> Appliance {
        let subject = subject ?? path
        guard let text = try FileSystem.readTextIfExists(path) else { throw VMToolsError(.failure, path, "cannot read the OVF descriptor") }
        let descriptor = try OVFDescriptor.parse(text, subject: subject)
        var disks: [String] = []
        for d in descriptor.disks {
            let file = try member(d.file, in: dir, subject: subject)
            guard isPlainFile(file) else { throw VMToolsError(.failure, subject, "the disk '\(d.file)' the descriptor names is missing") }
            disks.append(file)
        }
        for manifest in manifests ?? [String(path.dropLast(4)) + ".mf"] where isPlainFile(manifest) {
            try verify(manifest: manifest, in: dir, subject: subject)
        }
        return Appliance(descriptor: descriptor, disks: disks, directory: nil)
    }

    /// Each `SHA256(NAME)= HEX` line of the manifest must match the file.
    /// SHA-1 lines (older VMware exports) are not checked.
    static func verify(manifest: String, in dir: String, subject: String) throws {
        guard let text = try FileSystem.readTextIfExists(manifest) else { return }
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            guard line.hasPrefix("SHA256("), let close = line.firstRange(of: ")="), let open = line.firstIndex(of: "(") else { continue }
            let name = String(line[line.index(after: open)..<close.lowerBound])
            let expected = line[close.upperBound...].filter { !$0.isWhitespace }.lowercased()
            let file = try member(name, in: dir, subject: subject)
            guard isPlainFile(file) else { throw VMToolsError(.failure, subject, "the manifest names '\(name)', which is missing") }
            guard try SHA256.file(file) == expected else {
                throw VMToolsError(.failure, subject, "'\(name)' does not match its SHA-256 digest in the manifest: the file is damaged or was changed")
            }
        }
    }

    /// A file the descriptor or manifest names, inside `dir`: no absolute path, no `..`.
    static func member(_ name: String, in dir: String, subject: String) throws -> String {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard !name.isEmpty, !name.hasPrefix("/"), !parts.contains(".."), !name.contains("://") else {
            throw VMToolsError(.failure, subject, "the descriptor names '\(name)', which is not a file beside it")
        }
        return dir.appendingPathComponent(name)
    }

    /// A regular file, not a link to one: the archive decides nothing outside its directory.
    static func isPlainFile(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }
}
