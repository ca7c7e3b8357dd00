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
    /// Only regular files and directories may come out of it: a link,
    /// a FIFO or a device is refused, naming the member.
    package static func extract(_ archive: String, in directory: String) throws -> Appliance {
        // Opened here and given to tar as its stdin: a FIFO or a file
        // swapped in after the check never reaches tar.
        let input = try FileSystem.openForReading(archive)
        defer { close(input) }
        let work = try WorkDirectory(in: directory, prefix: WorkDirectory.importPrefix, purpose: "unpack \(archive) in")
        let dir = work.path
        do {
            // Run in the directory: tar unquotes a --directory value (a
            // backslash-n in it would become a newline).
            var tar = Subprocess("/bin/tar", ["--extract", "--no-same-owner", "--no-same-permissions", "--file", "-"], workingDirectory: dir)
            tar.endsOnInterrupt = true
            let x = try tar.run(input: input)
            guard x.status == 0 else {
                throw VMToolsError(.failure, archive, "cannot unpack: \(x.stderrText.trimmingTrailingWhitespace())")
            }
            try checkMembers(dir, subject: archive)
            let files = ([dir] + FileSystem.subdirectories(dir)).flatMap { d in
                ((try? FileSystem.listDirectory(d)) ?? []).sorted(by: bytewiseLess).map { d.appendingPathComponent($0) }
            }.filter { isPlainFile($0) }
            if let ovf = files.first(where: { $0.lowercased().hasSuffix(".ovf") && $0.deletingLastPathComponent == dir }) {
                // Whatever its name, a manifest in the archive is checked.
                let manifests = files.filter { $0.lowercased().hasSuffix(".mf") && $0.deletingLastPathComponent == dir }
                var a = try readDescriptor(ovf, in: dir, subject: archive, manifests: manifests)
                a.work = work
                return a
            }
            let disks = files.filter { $0.lowercased().hasSuffix(".vmdk") }
            guard disks.count == 1, let disk = disks.first else {
                throw VMToolsError(.failure, archive, disks.isEmpty ? "the .ova holds no .vmdk disk" : "the .ova holds several disks and no descriptor; extract them by hand")
            }
            return Appliance(descriptor: nil, disks: [disk], work: work)
        } catch {
            work.remove()
            throw error
        }
    }

    /// Every member unpacked in `dir` is a directory or a regular file with
    /// one link: a symbolic link (to a file or a directory), a hard link, a
    /// FIFO or a device would let the archive name a host file.
    static func checkMembers(_ dir: String, subject: String) throws {
        var stack = [(dir, "")]
        while let (path, name) = stack.popLast() {
            for entry in try FileSystem.listDirectory(path).sorted(by: bytewiseLess) {
                let full = path.appendingPathComponent(entry), member = name.isEmpty ? entry : name + "/" + entry
                var st = stat()
                guard lstat(full, &st) == 0 else { throw VMToolsError(.failure, subject, "cannot read the member '\(member)': \(FileSystem.errnoMessage())") }
                switch st.st_mode & S_IFMT {
                case S_IFDIR: stack.append((full, member))
                case S_IFREG where st.st_nlink == 1: break
                case S_IFREG: throw VMToolsError(.failure, subject, "the member '\(member)' is a hard link; an import reads only regular files")
                case S_IFLNK: throw VMToolsError(.failure, subject, "the member '\(member)' is a symbolic link; an import reads only regular files")
                default: throw VMToolsError(.failure, subject, "the member '\(member)' is \(FileSystem.fileKind(st.st_mode) ?? "not a plain file"); an import reads only regular files")
                }
            }
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
            if let problem = problem(file) { throw VMToolsError(.failure, subject, "the disk '\(d.file)' the descriptor names \(problem)") }
            disks.append(file)
        }
        for manifest in manifests ?? [String(path.dropLast(4)) + ".mf"] where isPlainFile(manifest) {
            try verify(manifest: manifest, in: dir, subject: subject)
        }
        return Appliance(descriptor: descriptor, disks: disks, work: nil)
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

    /// A file the descriptor or manifest names, inside `dir`: no absolute
    /// path, no `..`, and no directory on the way a symbolic link.
    static func member(_ name: String, in dir: String, subject: String, what: String = "the descriptor") throws -> String {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard !name.isEmpty, !name.hasPrefix("/"), !parts.contains(".."), !name.contains("://") else {
            throw VMToolsError(.failure, subject, "\(what) names '\(name)', which is not a file beside it")
        }
        var path = dir
        for part in parts.dropLast() where !part.isEmpty && part != "." {
            path = path.appendingPathComponent(String(part))
            var st = stat()
            if lstat(path, &st) == 0, st.st_mode & S_IFMT != S_IFDIR {
                throw VMToolsError(.failure, subject, "\(what) names '\(name)', but '\(part)' is not a directory beside it (a symbolic link?)")
            }
        }
        return dir.appendingPathComponent(name)
    }

    /// Why the file at `path` is not one an import reads: "is missing",
    /// "is a symbolic link; …"; nil for a regular file.
    package static func problem(_ path: String) -> String? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return "is missing" }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFLNK: return "is a symbolic link; an import reads only regular files"
        default: return "is \(FileSystem.fileKind(st.st_mode) ?? "not a plain file"); an import reads only regular files"
        }
    }

    /// A regular file, not a link to one: the archive decides nothing outside its directory.
    static func isPlainFile(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }
}
