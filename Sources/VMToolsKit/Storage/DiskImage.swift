#if canImport(Glibc)
import Glibc
#endif
import CSystem

/// Storage backend values (settings.md §4.7): `[rw:|snap:|ro:]location`.
public struct StorageBackend: Sendable, Equatable {
    public var prefix: String?
    public var location: String

    public init(_ value: String) {
        for p in ["rw", "snap", "ro"] where value.hasPrefix(p + ":") {
            prefix = p
            location = String(value.dropFirst(p.count + 1))
            return
        }
        prefix = nil
        location = value
    }

    /// URLs (`proto://…`, `nbd:…`) go to QEMU's own drivers untouched.
    public var isRemote: Bool {
        if location.lowercased().hasPrefix("nbd:") { return true }
        guard let r = location.firstRange(of: "://") else { return false }
        let scheme = location[..<r.lowerBound]
        return !scheme.isEmpty && scheme.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "+.-".contains($0)) }
    }

    /// The local path: `~/` expanded, relative paths taken from the VM home.
    public func path(home: String?, environment: [String: String]) -> String {
        var l = location
        if l.hasPrefix("~/"), let h = environment["HOME"] { l = h.appendingPathComponent(String(l.dropFirst(2))) }
        if !l.hasPrefix("/"), let home { l = home.appendingPathComponent(l) }
        return l
    }
}

/// One line describing a file, from its first bytes (what `file -b` says
/// about the kinds of image vmtools meets), without running anything.
public enum DiskImageKind {
    public static func describe(_ path: String) -> String {
        var st = stat()
        guard stat(path, &st) == 0 else { return "missing (no such file)" }
        switch st.st_mode & S_IFMT {
        case S_IFDIR: return "directory (shared as a generated ISO or a FAT disk)"
        case S_IFBLK: return "block special (a device)"
        case S_IFCHR: return "character special"
        case S_IFREG: break
        default: return "special file"
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "unreadable (\(FileSystem.errnoMessage()))" }
        defer { close(fd) }
        var head = [UInt8](repeating: 0, count: 0x8800)
        let n = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return "empty" }
        let b = Array(head[0..<n])
        func be(_ off: Int, _ len: Int) -> UInt64 {
            guard off + len <= b.count else { return 0 }
            return b[off..<off + len].reduce(0) { $0 << 8 | UInt64($1) }
        }
        func text(_ off: Int, _ len: Int) -> String {
            guard off + len <= b.count else { return "" }
            return String(decoding: b[off..<off + len], as: UTF8.self)
        }
        if Array(b.prefix(4)) == [0x51, 0x46, 0x49, 0xFB] {
            let version = be(4, 4)
            var s = "QEMU QCOW\(version >= 2 ? "2" : "") Image (v\(version)), \(be(24, 8)) bytes"
            let backingOffset = Int(be(8, 8)), backingSize = Int(be(16, 4))
            if backingOffset > 0, backingSize > 0, backingSize < 4096 {
                var name = [UInt8](repeating: 0, count: backingSize)
                if name.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, backingSize, off_t(backingOffset)) }) == backingSize {
                    s += ", has backing file (path \(String(decoding: name, as: UTF8.self)))"
                }
            }
            return s
        }
        if text(0x8001, 5) == "CD001" {
            let label = text(0x8028, 32).trimmingTrailingWhitespace()
            var s = "ISO 9660 CD-ROM filesystem data '\(label)'"
            if be(510, 2) == 0x55AA { s += " (DOS/MBR boot sector)" }
            return s
        }
        if text(0, 4) == "KDMV" { return "VMware4 disk image" }
        if text(0, 8) == "vhdxfile" { return "Microsoft Disk Image eXtended (VHDX)" }
        if text(0, 8) == "conectix" || (st.st_size >= 512 && trailerIsVHD(fd, size: st.st_size)) {
            return "Microsoft Disk Image (VHD)"
        }
        if b.count >= 0x44, Array(b[0x40..<0x44]) == [0x7F, 0x10, 0xDA, 0xBE] {
            return "VirtualBox Disk Image (VDI)"
        }
        if text(257, 5) == "ustar" { return "POSIX tar archive" }
        if be(510, 2) == 0x55AA { return "DOS/MBR boot sector" }
        return "data"
    }

    /// An ISO 9660 image or a CD in a drive: the `CD001` signature at 0x8001.
    public static func isISO(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var sig = [UInt8](repeating: 0, count: 5)
        return sig.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, 5, 0x8001) }) == 5 && sig == Array("CD001".utf8)
    }

    private static func trailerIsVHD(_ fd: Int32, size: off_t) -> Bool {
        var tail = [UInt8](repeating: 0, count: 8)
        let n = tail.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 8, size - 512) }
        return n == 8 && String(decoding: tail, as: UTF8.self) == "conectix"
    }
}

/// `qemu-img`, always with JSON output (commands.md §0.9).
public enum QemuImg {
    /// `qemu-img info --output=json [--backing-chain] -U -- PATH`. `-U`
    /// (force share) reads an image a running VM has open.
    public static func info(_ path: String, backingChain: Bool, environment: [String: String]) throws -> JSON {
        let exe = try executable(path, environment: environment, purpose: "cannot inspect the image")
        var args = ["info", "--output=json", "-U"]
        if backingChain { args.append("--backing-chain") }
        args += ["--", path]
        let r = try Subprocess(exe, args).run()
        guard r.status == 0 else {
            let why = r.stderrText.split(separator: "\n").first.map(String.init) ?? "exit status \(r.status)"
            throw VMToolsError(.failure, path, "qemu-img info failed: \(why)")
        }
        do {
            return try JSON.parse(r.stdoutText)
        } catch {
            throw VMToolsError(.failure, path, "qemu-img info printed something that is not JSON")
        }
    }
}

/// Image formats by their first bytes, as QEMU names them: fast, no
/// subprocess, and explicit formats keep QEMU from probing (and warning).
public enum ImageFormat {
    public static func detect(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var head = [UInt8](repeating: 0, count: 512)
        let n = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n >= 0 else { return nil }
        let b = Array(head[0..<n])
        func starts(_ s: String) -> Bool { b.starts(with: Array(s.utf8)) }
        if b.starts(with: [0x51, 0x46, 0x49, 0xFB]) { return b.count >= 8 && b[7] == 1 && b[4...6].allSatisfy({ $0 == 0 }) ? "qcow" : "qcow2" }
        if starts("KDMV") || starts("# Disk DescriptorFile") { return "vmdk" }
        if starts("vhdxfile") { return "vhdx" }
        if starts("conectix") { return "vpc" }
        if b.count >= 0x44, Array(b[0x40..<0x44]) == [0x7F, 0x10, 0xDA, 0xBE] { return "vdi" }
        var st = stat()
        if fstat(fd, &st) == 0, st.st_size >= 512 {
            var tail = [UInt8](repeating: 0, count: 8)
            if tail.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, 8, st.st_size - 512) }) == 8, tail == Array("conectix".utf8) {
                return "vpc"
            }
        }
        return "raw"
    }

    /// The qcow2 version (2 or 3) of a qcow2 file.
    public static func qcow2Version(_ path: String) -> Int? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var head = [UInt8](repeating: 0, count: 8)
        guard head.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, 8, 0) }) == 8 else { return nil }
        return Int(head[4..<8].reduce(0) { $0 << 8 | UInt32($1) })
    }
}

extension QemuImg {
    /// The `qemu-img` in PATH; `purpose` says what needed it when it is missing.
    static func executable(_ subject: String, environment: [String: String], purpose: String? = nil) throws -> String {
        guard let exe = Subprocess.which("qemu-img", path: environment["PATH"]) else {
            throw VMToolsError(.failure, subject, (purpose.map { $0 + ": " } ?? "") + "qemu-img is not installed (Debian: apt-get install qemu-utils)")
        }
        return exe
    }

    /// Runs `qemu-img ARGS`; a failure names `subject` and quotes qemu-img.
    /// With `progress`, qemu-img's own meter goes to the terminal.
    static func run(_ args: [String], subject: String, environment: [String: String], progress: Bool = false,
                    purpose: String? = nil) throws {
        let exe = try executable(subject, environment: environment, purpose: purpose)
        if progress {
            let status = try Subprocess(exe, args).runInteractive()
            guard status == 0 else { throw VMToolsError(.failure, subject, "qemu-img \(args[0]) failed (exit status \(status))") }
            return
        }
        let r = try Subprocess(exe, args).run()
        guard r.status == 0 else {
            throw VMToolsError(.failure, subject, "qemu-img \(args[0]) failed: \(r.stderrText.trimmingTrailingWhitespace())")
        }
    }

    /// A new, empty qcow2 disk of `size` (`40G`).
    public static func createDisk(_ path: String, size: String, environment: [String: String]) throws {
        try run(["create", "-q", "-f", "qcow2", "--", path, size], subject: path, environment: environment, purpose: "cannot create the disk")
    }

    /// An empty qcow2 overlay on `backing`, with its format recorded.
    public static func createOverlay(_ path: String, backing: String, environment: [String: String]) throws {
        let format = ImageFormat.detect(backing) ?? "raw"
        try run(["create", "-q", "-f", "qcow2", "-b", backing, "-F", format, "--", path], subject: path, environment: environment)
    }

    public struct Backing: Equatable, Sendable {
        public var path: String
        public var format: String
    }

    /// The backing file an image records, absolute (relative names are
    /// taken from the image's directory, as QEMU does), and its format.
    public static func backing(of image: String, environment: [String: String]) throws -> Backing? {
        guard ImageFormat.detect(image) == "qcow2" else { return nil }
        let info = try info(image, backingChain: false, environment: environment)
        guard let raw = info["backing-filename"]?.stringValue, !raw.isEmpty else { return nil }
        let path = raw.hasPrefix("/") ? raw : image.deletingLastPathComponent.appendingPathComponent(raw)
        let format = info["backing-filename-format"]?.stringValue ?? ImageFormat.detect(path) ?? "raw"
        return Backing(path: path, format: format)
    }

    /// `qemu-img rebase -u`: rewrites the recorded backing path only. Right
    /// when the new backing holds the same data (a moved or copied parent).
    public static func rebaseUnsafe(_ image: String, backing: String, format: String, environment: [String: String]) throws {
        try run(["rebase", "-u", "-b", backing, "-F", format, "--", image], subject: image, environment: environment)
    }

    /// `qemu-img convert` into a new qcow2: flattened, or keeping `backing`
    /// (only the clusters that differ from it are written).
    public static func convert(_ source: String, to dest: String, backing: Backing?, compress: Bool, progress: Bool,
                               environment: [String: String]) throws {
        var args = ["convert", "-O", "qcow2"]
        if progress { args.append("-p") }
        if compress { args.append("-c") }
        if let backing { args += ["-B", backing.path, "-F", backing.format] }
        args += ["--", source, dest]
        try run(args, subject: source, environment: environment, progress: progress)
    }

    /// `qemu-img commit -d`: writes an overlay's data into its backing file
    /// and leaves the overlay as it was (not emptied), so that undoing a
    /// safe merge finds the data still there.
    public static func commit(_ image: String, environment: [String: String]) throws {
        try run(["commit", "-q", "-d", "--", image], subject: image, environment: environment)
    }

    /// Whether a running QEMU holds the image's write lock (commands.md
    /// §0.5): probed directly on the OFD lock QEMU keeps for writers, which
    /// costs a syscall where `qemu-img info` costs a process.
    public static func isInUse(_ image: String, environment: [String: String]) -> Bool {
        let fd = open(image, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return csystem_image_write_locked(fd) == 1
    }
}
