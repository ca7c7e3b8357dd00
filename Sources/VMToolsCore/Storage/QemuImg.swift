#if canImport(Glibc)
import Glibc
#endif
import CSystem

/// `qemu-img`, always with JSON output (vmtools(1)).
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

extension QemuImg {
    public enum SnapshotAction: String, Sendable {
        case create = "-c", apply = "-a", delete = "-d"
    }

    /// `qemu-img snapshot -c|-a|-d TAG IMAGE` on a stopped VM's image
    /// (vmsnap(1)); the tag was checked by `SnapshotName.check`.
    public static func snapshot(_ action: SnapshotAction, _ tag: String, image: String, environment: [String: String]) throws {
        try run(["snapshot", "-q", action.rawValue, tag, "--", image], subject: image, environment: environment,
                purpose: "cannot change the snapshots")
    }

    /// The same on several images side by side (each is its own file, so
    /// the calls are independent); the first failure names its image.
    public static func snapshot(_ action: SnapshotAction, _ tag: String, images: [String], environment: [String: String]) throws {
        guard images.count > 1 else {
            for image in images { try snapshot(action, tag, image: image, environment: environment) }
            return
        }
        let exe = try executable(images[0], environment: environment, purpose: "cannot change the snapshots")
        let results = try Subprocess.runAll(images.map { Subprocess(exe, ["snapshot", "-q", action.rawValue, tag, "--", $0]) })
        for (image, r) in zip(images, results) where r.status != 0 {
            throw VMToolsError(.failure, image, "qemu-img snapshot failed: \(r.stderrText.trimmingTrailingWhitespace())")
        }
    }

    /// The `qemu-img` in PATH; `purpose` says what needed it when it is missing.
    package static func executable(_ subject: String, environment: [String: String], purpose: String? = nil) throws -> String {
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
            let status = try Subprocess(exe, args).runInteractive(diesWithParent: true)
            guard status == 0 else { throw VMToolsError(.failure, subject, "qemu-img \(args[0]) failed (exit status \(status))") }
            return
        }
        let r = try Subprocess(exe, args).run()
        guard r.status == 0 else {
            throw VMToolsError(.failure, subject, "qemu-img \(args[0]) failed: \(r.stderrText.trimmingTrailingWhitespace())")
        }
    }

    /// A new, empty qcow2 disk of `size` (`40G`); `preallocation` other than
    /// `off` makes it thick (vm.settings(5)).
    public static func createDisk(_ path: String, size: String, preallocation: String = "off", environment: [String: String]) throws {
        let options = preallocation == "off" ? [] : ["-o", "preallocation=\(preallocation)"]
        // qemu-img follows a link at its output, a dangling one too: the file
        // is made here first (O_EXCL, never through a link), and it writes into it.
        try FileSystem.createExclusive(path, mode: 0o644 & ~FileSystem.currentUmask())
        do {
            try run(["create", "-q", "-f", "qcow2"] + options + ["--", path, size], subject: path, environment: environment,
                    purpose: "cannot create the disk")
        } catch {
            unlink(path)
            throw error
        }
    }

    /// `qemu-img resize`: grows a disk to `bytes` (never called to shrink).
    public static func grow(_ path: String, format: String, to bytes: Int, environment: [String: String]) throws {
        try run(["resize", "-q", "-f", format, "--", path, String(bytes)], subject: path, environment: environment, purpose: "cannot grow the disk")
    }

    /// An empty qcow2 overlay on `backing`, with its format recorded.
    public static func createOverlay(_ path: String, backing: String, environment: [String: String]) throws {
        let format = ImageProbe(backing)?.kind.format ?? "raw"
        try run(["create", "-q", "-f", "qcow2", "-b", backing, "-F", format, "--", path], subject: path, environment: environment)
    }

    /// A VM's own overlay on a cached image (vmcreate(1), IMAGES BY NAME):
    /// the base's format given, never probed; `size` larger than the base's
    /// grows it. Made here first (O_EXCL, never through a link), as `createDisk`.
    public static func createOverlay(_ path: String, backing: String, format: String, size: String?,
                                     environment: [String: String]) throws {
        try FileSystem.createExclusive(path, mode: 0o644 & ~FileSystem.currentUmask())
        do {
            try run(["create", "-q", "-f", "qcow2", "-b", backing, "-F", format, "--", path] + (size.map { [$0] } ?? []),
                    subject: path, environment: environment, purpose: "cannot create the overlay")
        } catch {
            unlink(path)
            throw error
        }
    }

    public struct Backing: Equatable, Sendable {
        public var path: String
        public var format: String
    }

    /// The backing file an image records, absolute (relative names are
    /// taken from the image's directory, as QEMU does), and its format.
    public static func backing(of image: String, environment: [String: String]) throws -> Backing? {
        guard ImageProbe(image)?.kind.format == "qcow2" else { return nil }
        let info = try info(image, backingChain: false, environment: environment)
        guard let raw = info["backing-filename"]?.stringValue, !raw.isEmpty else { return nil }
        let path = raw.hasPrefix("/") ? raw : image.deletingLastPathComponent.appendingPathComponent(raw)
        let format = info["backing-filename-format"]?.stringValue ?? ImageProbe(path)?.kind.format ?? "raw"
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

    /// `qemu-img convert -f FORMAT -O qcow2` into a new file that appears
    /// whole or not at all: a temporary name beside it, fsync, rename (a
    /// UEFI variable store made from its template; vm.settings(5), FIRMWARE).
    public static func convertAtomically(_ source: String, format: String, to dest: String, environment: [String: String]) throws {
        // Made 0600 here (qemu-img would make it 0644 less the umask, and it
        // keeps an existing file's mode): UEFI variables can hold secrets.
        let tmp = try FileSystem.createExclusiveTemporary(beside: dest, mode: 0o600)
        do {
            try run(["convert", "-q", "-f", format, "-O", "qcow2", "--", source, tmp], subject: dest, environment: environment,
                    purpose: "cannot create the UEFI variable store")
            try FileSystem.syncFile(tmp)
            try FileSystem.rename(tmp, dest)
        } catch {
            unlink(tmp)
            throw error
        }
    }

    /// `qemu-img commit -d`: writes an overlay's data into its backing file
    /// and leaves the overlay as it was (not emptied), so that undoing a
    /// safe merge finds the data still there.
    public static func commit(_ image: String, environment: [String: String]) throws {
        try run(["commit", "-q", "-d", "--", image], subject: image, environment: environment)
    }

    /// Whether a running QEMU holds the image's write lock (vmtools(7)
    /// CRASH SAFETY): probed directly on the OFD lock QEMU keeps for writers, which
    /// costs a syscall where `qemu-img info` costs a process.
    public static func isInUse(_ image: String, environment: [String: String]) -> Bool {
        guard let fd = try? FileSystem.openForReading(image) else { return false }
        defer { close(fd) }
        return csystem_image_write_locked(fd) == 1
    }
}
