#if canImport(Glibc)
import Glibc
#endif

/// The rule for an image an import converts (vmcreate(1) Imported
/// appliances): qemu-img reads only files of the appliance. A VMDK's
/// extents and parent, a qcow2's backing and data file are names QEMU
/// opens; each must be a plain name (no `/`, no `:`) of a regular file in
/// the image's own directory, itself checked the same way. Anything else
/// would copy a host file (`RW 1 FLAT "/home/u/.ssh/id_ed25519" 0`) into
/// the new disk, so it is refused, naming the member.
///
/// The check reads more than QEMU would (a backing, parent or data file is
/// scanned as a VMDK descriptor unless its magic says otherwise), so that a
/// probed or recorded format cannot make QEMU read what the check did not.
package enum ImportedImage {
    /// Checks `path`, the member `member` of `subject` (the appliance or
    /// image given), and returns its format for `qemu-img convert -f`.
    /// `followLink`: the file the user named may be a link; a member never.
    package static func check(_ path: String, member: String, subject: String, followLink: Bool = false) throws -> String {
        var walk = Walk(subject: subject, directory: path.deletingLastPathComponent)
        let fd = try walk.open(path, name: member, noFollow: !followLink)
        defer { close(fd) }
        let format = ImageProbe(fd: fd)?.kind.format ?? "raw"
        var references: [Reference] = []
        switch format {
        case "qcow", "qcow2", "vmdk": references = try walk.references(fd, name: member, scanText: format == "vmdk")
        default: break
        }
        try walk.follow(references, from: member, depth: 1)
        return format
    }

    /// A file one image names, and what it is to that image.
    struct Reference {
        static let extent = "an extent"
        var name: String
        var role: String
    }

    struct Walk {
        let subject: String
        let directory: String
        var seen: Set<String> = []

        func refuse(_ why: String) -> VMToolsError { VMToolsError(.failure, subject, why) }

        func open(_ path: String, name: String, noFollow: Bool) throws -> Int32 {
            do {
                return try FileSystem.openForReading(path, noFollow: noFollow)
            } catch let e as VMToolsError {
                var st = stat()
                if noFollow, lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFLNK {
                    throw refuse("'\(name)' is a symbolic link; an import reads only regular files")
                }
                throw refuse("'\(name)' \(e.message)")
            }
        }

        mutating func follow(_ refs: [Reference], from owner: String, depth: Int) throws {
            for r in refs {
                guard Self.isPlainName(r.name) else {
                    throw refuse("'\(owner)' names '\(r.name)' as \(r.role), which is not a file beside it; an import reads only the appliance's own files")
                }
                let path = directory.appendingPathComponent(r.name)
                guard seen.insert(path).inserted else { continue }
                guard depth < 16, seen.count < 4096 else { throw refuse("'\(owner)' names too many files (\(r.role) '\(r.name)')") }
                var st = stat()
                guard lstat(path, &st) == 0 else { throw refuse("'\(owner)' names '\(r.name)' as \(r.role), which is missing") }
                let fd = try open(path, name: r.name, noFollow: true)
                defer { close(fd) }
                // An extent is raw data or a sparse file with a magic (QEMU's
                // vmdk driver); a backing, parent or data file may be probed.
                try follow(try references(fd, name: r.name, scanText: r.role != Reference.extent), from: r.name, depth: depth + 1)
            }
        }

        /// A name QEMU resolves in the image's directory: nothing it could
        /// read as a path elsewhere or a protocol (`nbd:`, `json:`).
        static func isPlainName(_ name: String) -> Bool {
            !name.isEmpty && name != "." && name != ".." && !name.contains("/") && !name.contains(":")
                && !name.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
        }

        /// The files an image names. A file without a magic this knows is
        /// scanned as a VMDK text descriptor when `scanText`.
        func references(_ fd: Int32, name: String, scanText: Bool) throws -> [Reference] {
            let head = Self.read(fd, 0, 512)
            func le(_ off: Int, _ len: Int) -> UInt64 {
                off + len <= head.count ? head[off..<off + len].reversed().reduce(0) { $0 << 8 | UInt64($1) } : 0
            }
            if head.starts(with: [0x51, 0x46, 0x49, 0xFB]) { return try qcow(fd, head: head, name: name) }
            if head.starts(with: Array("QED\0".utf8)) { throw refuse("'\(name)' is a QED image, which an import does not read") }
            if head.starts(with: Array("KDMV".utf8)) {
                // QEMU reads a parent hint at 0x200, and a descriptor with
                // extents when the sparse header has no capacity.
                var refs = Self.descriptorReferences(Self.read(fd, 0x200, 20 * 512)).filter { $0.role != Reference.extent }
                let offset = le(28, 8), size = le(36, 8)
                if le(12, 8) == 0, offset != 0, offset < 1 << 40 {
                    refs += Self.descriptorReferences(Self.read(fd, Int(offset) * 512, Int(min(size * 512, 1 << 20))))
                }
                return refs
            }
            if head.starts(with: Array("COWD".utf8)) || !scanText { return [] }
            return Self.descriptorReferences(Self.read(fd, 0, 1 << 20))
        }

        /// A qcow or qcow2 header's backing file, its recorded format and
        /// a qcow2's external data file (docs/interop/qcow2.txt in QEMU).
        func qcow(_ fd: Int32, head: [UInt8], name: String) throws -> [Reference] {
            func be(_ off: Int, _ len: Int) -> Int {
                off + len <= head.count ? Int(truncatingIfNeeded: head[off..<off + len].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }) : 0
            }
            var refs: [Reference] = []
            let version = be(4, 4)
            let backingOffset = be(8, 8), backingLength = be(16, 4)
            if backingOffset != 0, backingLength != 0 {
                guard backingLength <= 1023, backingOffset < 1 << 24 else { throw refuse("'\(name)' has a backing file name QEMU cannot read") }
                refs.append(Reference(name: String(decoding: Self.read(fd, backingOffset, backingLength), as: UTF8.self), role: "its backing file"))
            }
            guard version >= 2 else { return refs }
            let clusterBits = be(20, 4)
            let externalData = version >= 3 && be(72, 8) & (1 << 2) != 0
            var dataFile: String?
            let start = version >= 3 ? be(100, 4) : 72
            let end = min(1 << min(max(clusterBits, 9), 21), backingOffset == 0 ? Int.max : backingOffset)
            if start >= 72, start < end {
                let ext = Self.read(fd, start, end - start)
                func u32(_ off: Int) -> Int { off + 4 <= ext.count ? ext[off..<off + 4].reduce(0) { $0 << 8 | Int($1) } : 0 }
                var at = 0
                while at + 8 <= ext.count {
                    let type = u32(at), length = u32(at + 4)
                    if type == 0 || at + 8 + length > ext.count { break }
                    let data = ext[(at + 8)..<(at + 8 + length)]
                    switch type {
                    case 0xE279_2ACA:
                        let format = String(decoding: data, as: UTF8.self)
                        guard ["raw", "qcow2", "qcow", "vmdk", "vpc", "vhdx", "vdi"].contains(format) else {
                            throw refuse("'\(name)' records its backing file's format as '\(format)', which an import does not read")
                        }
                    case 0x4441_5441:
                        dataFile = String(decoding: data, as: UTF8.self)
                    default: break
                    }
                    at += 8 + (length + 7) / 8 * 8
                }
            }
            if externalData {
                guard let dataFile else { throw refuse("'\(name)' needs an external data file it does not name") }
                refs.append(Reference(name: dataFile, role: "its data file"))
            }
            return refs
        }

        /// Extent lines (`RW 4192256 FLAT "disk-flat.vmdk" 0`) and every
        /// `parentFileNameHint="…"` of a VMDK descriptor, as QEMU's parser
        /// finds them: in bytes, lines ending at LF only.
        static func descriptorReferences(_ bytes: [UInt8]) -> [Reference] {
            let quote = UInt8(ascii: "\"")
            var refs: [Reference] = []
            for raw in bytes.split(separator: UInt8(ascii: "\n")) {
                let line = raw.drop { $0 == 0x20 || (0x09...0x0D).contains($0) }
                let access = String(decoding: line.prefix { $0 != 0x20 && !(0x09...0x0D).contains($0) }, as: UTF8.self).uppercased()
                guard ["RW", "RDONLY", "NOACCESS"].contains(access), let open = line.firstIndex(of: quote) else { continue }
                let name = line[(open + 1)...].prefix { $0 != quote }
                refs.append(Reference(name: String(decoding: name, as: UTF8.self), role: Reference.extent))
            }
            let hint = Array("parentFileNameHint=\"".utf8)
            var at = 0
            while at + hint.count <= bytes.count {
                guard bytes[at] == hint[0], Array(bytes[at..<at + hint.count]) == hint else { at += 1; continue }
                let name = bytes[(at + hint.count)...].prefix { $0 != quote }
                refs.append(Reference(name: String(decoding: name, as: UTF8.self), role: "its parent disk"))
                at += hint.count
            }
            return refs
        }

        static func read(_ fd: Int32, _ offset: Int, _ count: Int) -> [UInt8] {
            guard count > 0, offset >= 0 else { return [] }
            return FileSystem.readBytes(fd, at: offset, count: count) ?? []
        }
    }
}
