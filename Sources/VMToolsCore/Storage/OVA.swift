#if canImport(Glibc)
import Glibc
#endif

/// A VM made elsewhere, given as one file (vmcreate(1) IMPORTED APPLIANCES):
/// an `.ova` (tar of an OVF descriptor, its disks and a manifest), a plain
/// `.ovf` descriptor with its files beside it, or a VMware `.vmx`.
package struct Appliance: Sendable {
    /// What the descriptor says; nil for an `.ova` without one.
    package var descriptor: OVFDescriptor?
    /// The disks, in the VM's order.
    package var disks: [String]
    /// The private directory an `.ova` was unpacked into (the caller removes it).
    package var directory: String?

    package enum Kind: String, Sendable { case ova, ovf, vmx }

    /// The kind of `path`, from its content (a tar archive) or its name and first bytes.
    package static func kind(of path: String) -> Kind? {
        if DiskImageKind.describe(path) == "POSIX tar archive" { return .ova }
        let lower = path.lowercased()
        guard lower.hasSuffix(".ovf") || lower.hasSuffix(".vmx"), let head = head(path) else { return nil }
        let text = String(decoding: head, as: UTF8.self)
        if lower.hasSuffix(".ovf") { return text.contains("<") ? .ovf : nil }
        // A .vmx is text: key = "value" lines; an image named .vmx is not one.
        return head.contains(0) ? nil : .vmx
    }

    /// Up to the first 4 KiB of a file.
    static func head(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var h = [UInt8](repeating: 0, count: 4096)
        let n = h.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        return n > 0 ? Array(h[0..<n]) : nil
    }

    package static func read(_ path: String, kind: Kind, unpackIn directory: String) throws -> Appliance {
        switch kind {
        case .ova: return try OVA.extract(path, in: directory)
        case .ovf: return try OVA.readDescriptor(path, in: path.deletingLastPathComponent)
        case .vmx: return try VMX.read(path)
        }
    }
}

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
                var a = try readDescriptor(ovf, in: dir, subject: archive)
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
    package static func readDescriptor(_ path: String, in dir: String, subject: String? = nil) throws -> Appliance {
        let subject = subject ?? path
        guard let text = try FileSystem.readTextIfExists(path) else { throw VMToolsError(.failure, path, "cannot read the OVF descriptor") }
        let descriptor = try OVFDescriptor.parse(text, subject: subject)
        var disks: [String] = []
        for d in descriptor.disks {
            let file = try member(d.file, in: dir, subject: subject)
            guard isPlainFile(file) else { throw VMToolsError(.failure, subject, "the disk '\(d.file)' the descriptor names is missing") }
            disks.append(file)
        }
        let manifest = String(path.dropLast(4)) + ".mf"
        if isPlainFile(manifest) { try verify(manifest: manifest, in: dir, subject: subject) }
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

/// A VMware `.vmx`: `key = "value"` lines (vmcreate(1) IMPORTED APPLIANCES).
package enum VMX {
    package static func read(_ path: String) throws -> Appliance {
        guard let text = try FileSystem.readTextIfExists(path) else { throw VMToolsError(.failure, path, "cannot read") }
        var values: [String: String] = [:]
        for raw in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let line = raw.drop { $0.isWhitespace }
            guard !line.hasPrefix("#"), let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].filter { !$0.isWhitespace }.lowercased()
            var value = line[line.index(after: eq)...].drop { $0.isWhitespace }
            while value.last?.isWhitespace == true { value = value.dropLast() }
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = value.dropFirst().dropLast() }
            values[key] = String(value)
        }
        var d = OVFDescriptor(name: values["displayname"] ?? path.lastPathComponent)
        if let v = values["numvcpus"] {
            guard let n = Int(v), n > 0 else { throw VMToolsError(.failure, path, "numvcpus = \"\(v)\": expected a positive number") }
            d.cpus = n
        }
        if let v = values["memsize"] {
            guard let n = Int(v), n > 0 else { throw VMToolsError(.failure, path, "memsize = \"\(v)\": expected a size in MB") }
            d.memoryMB = n
        }
        d.efi = values["firmware"]?.lowercased() == "efi"
        d.secureBoot = d.efi && values["uefi.secureboot.enabled"]?.uppercased() == "TRUE"
        // Disks by bus, then controller, then unit: scsi0:0 before scsi0:1.
        var disks: [(order: [Int], file: String)] = []
        for (key, value) in values where key.hasSuffix(".filename") {
            let device = key.dropLast(".filename".count)
            guard let colon = device.firstIndex(of: ":") else { continue }
            let bus = device[..<colon].prefix { $0.isLetter }
            guard let rank = ["ide", "sata", "scsi", "nvme"].firstIndex(of: String(bus)),
                  let controller = Int(device[..<colon].dropFirst(bus.count)), let unit = Int(device[device.index(after: colon)...]) else { continue }
            guard values["\(device).present"]?.uppercased() != "FALSE" else { continue }
            let type = values["\(device).devicetype"]?.lowercased() ?? ""
            guard !type.contains("cdrom"), value.lowercased().hasSuffix(".vmdk") else { continue }
            disks.append(([rank, controller, unit], value))
        }
        let dir = path.deletingLastPathComponent
        var paths: [String] = []
        for disk in disks.sorted(by: { $0.order.lexicographicallyPrecedes($1.order) }) {
            let file = disk.file.hasPrefix("/") ? disk.file : dir.appendingPathComponent(disk.file)
            guard FileSystem.isReadable(file) else { throw VMToolsError(.failure, path, "the disk '\(disk.file)' it names is missing") }
            paths.append(file)
        }
        // Ethernet numbers may skip (ethernet0, ethernet2): the order is kept, not the numbers.
        for n in 0..<10 where values["ethernet\(n).present"] != nil || values["ethernet\(n).virtualdev"] != nil {
            if values["ethernet\(n).present"]?.uppercased() != "FALSE" {
                d.nics.append(values["ethernet\(n).virtualdev"] ?? "e1000")
                if let mac = values["ethernet\(n).address"] ?? values["ethernet\(n).generatedaddress"], !mac.isEmpty,
                   values["ethernet\(n).addresstype"]?.lowercased() == "static" {
                    d.macs[d.nics.count - 1] = mac.lowercased()
                }
            }
        }
        return Appliance(descriptor: d, disks: paths, directory: nil)
    }
}
