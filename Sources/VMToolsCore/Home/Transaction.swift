#if canImport(Glibc)
import Glibc
#endif
import CSystem

/// A multi-step change to VM trees that can always be undone (vmtools(7)
/// CRASH SAFETY): before each step, how to undo it is appended to a journal in a
/// backup directory `vmtools-backup.XXXXXXXXXX` and synced; replaced files
/// are kept there. On error or Ctrl-C the journal is replayed last-first; a
/// process killed outright leaves the directory behind, and `vmfix -b`
/// replays it. Every undo action is idempotent — it checks what is there —
/// so replaying after a crash at any point, or twice, is safe.
///
/// The owner holds an `flock` on the journal: `vmfix -b` leaves the backup
/// directory of a live operation alone.
public final class Transaction {
    public enum Undo: Equatable, Sendable {
        /// The step creates this path: undo removes it (recursively).
        case remove(String)
        /// The step creates this directory: undo removes it if nothing but
        /// lock links is left in it (never someone else's directory).
        case removeDirectory(String)
        /// The step replaces or deletes `original`, whose old content is at
        /// `backup` (in the backup directory): undo puts it back.
        case restore(backup: String, original: String)
        /// The step renames `from` to `to`: undo renames it back.
        case rename(from: String, to: String)
        /// The step changes the backing file of `image`; this was it.
        case rebase(image: String, backing: String, format: String)
        /// The step creates internal snapshot `tag` in `image`: undo deletes
        /// it. Also journaled *before* a `vmsnap -d`, whose replay then
        /// finishes the deletion (vmsnap(1), CRASH SAFETY).
        case deleteSnapshot(image: String, tag: String)
        /// Journaled before a `vmsnap -r` of a stopped VM: replay finishes
        /// the revert (applying a snapshot twice is harmless).
        case applySnapshot(image: String, tag: String)
    }

    public static let journalName = "journal"
    static let header = "vmtools-journal 1"

    /// Where the backup directory is made (it is made on first need).
    /// Large files are moved into it, so it should be on their filesystem.
    public let anchor: String
    public private(set) var backupDirectory: String?
    private var journalFD: Int32 = -1
    private var steps: [Undo] = []
    private var counter = 0
    private var finished = false
    var environment: [String: String]

    public init(anchor: String, environment: [String: String] = [:]) {
        self.anchor = anchor
        self.environment = environment
    }

    deinit { if !finished { rollback() } }

    // MARK: Recording steps

    /// Records how to undo the step the caller is about to make.
    public func record(_ undo: Undo) throws {
        try record([undo])
    }

    /// Records several steps in one write and one sync, so that a process
    /// killed meanwhile journals all of them or none: a set of steps that
    /// completes an operation (a `vmsnap -r` applying its snapshot to every
    /// image) must never be replayed in part.
    public func record(_ undos: [Undo]) throws {
        guard !undos.isEmpty else { return }
        try Interrupt.check()
        try openJournal()
        var lines: [UInt8] = []
        for undo in undos {
            lines += Self.encode(undo)
            lines.append(UInt8(ascii: "\n"))
        }
        let ok = lines.withUnsafeBytes { write(journalFD, $0.baseAddress, $0.count) == $0.count }
        guard ok, fdatasync(journalFD) == 0 else {
            throw VMToolsError(.failure, backupDirectory, "cannot write the undo journal: \(FileSystem.errnoMessage())")
        }
        let first = steps.count + 1
        steps += undos
        if (first...steps.count).contains(Self.faultStep) { kill(getpid(), SIGKILL) }
    }

    /// Fault injection for the crash tests: `VMTOOLS_FAULT_KILL_AT_STEP=N`
    /// kills the process right after it journals its N-th step.
    static let faultStep: Int = getenv("VMTOOLS_FAULT_KILL_AT_STEP").flatMap { Int(String(cString: $0)) } ?? -1

    /// A fresh path inside the backup directory.
    public func backupPath(for original: String) throws -> String {
        try openJournal()
        counter += 1
        return backupDirectory!.appendingPathComponent("\(counter)-\(original.lastPathComponent)")
    }

    /// Creates a directory (or reuses an existing one), undone by removing
    /// it once what was made inside it is gone.
    public func makeDirectory(_ path: String) throws {
        if FileSystem.isDirectory(path) { return }
        try record(.removeDirectory(path))
        guard mkdir(path, 0o755) == 0 else { throw VMToolsError(.failure, path, "cannot create: \(FileSystem.errnoMessage())") }
        FileSystem.syncDirectory(path.deletingLastPathComponent)
    }

    /// Writes a small file atomically (nil deletes it); the old content is
    /// kept for undo.
    public func writeFile(_ data: [UInt8]?, to path: String) throws {
        if FileSystem.exists(path) {
            // The new content comes in by rename, so the old inode is never
            // written again: a hard link keeps it, without copying a byte.
            let backup = try backupPath(for: path)
            if link(path, backup) != 0 {
                try FileSystem.writeAtomically(try FileSystem.readBytes(path), to: backup, mode: FileSystem.mode(path) ?? 0o644)
            }
            try record(.restore(backup: backup, original: path))
        } else if data != nil {
            try record(.remove(path))
        }
        if let data {
            // Written in the backup directory, then renamed into place: a
            // crash leaves no temporary file in the home.
            let staged = try backupPath(for: path) + ".new"
            try FileSystem.writeAtomically(data, to: staged, mode: FileSystem.mode(path) ?? 0o644 & ~FileSystem.currentUmask(), syncDirectory: false)
            if Glibc.rename(staged, path) == 0 {
                FileSystem.syncDirectory(path.deletingLastPathComponent)
            } else {
                unlink(staged)
                try FileSystem.writeAtomically(data, to: path)
            }
        } else {
            try FileSystem.removeFile(path)
        }
    }

    /// Moves a file or directory out of the way, into the backup directory,
    /// where commit deletes it and rollback brings it back.
    /// On another filesystem than the backup directory, a second one is made
    /// in `near` (default: the directory holding `path`), which must not
    /// itself be moved aside later.
    public func moveAside(_ path: String, near: String? = nil) throws {
        guard FileSystem.lexists(path) else { return }
        try openJournal()
        var backup = try backupPath(for: path)
        if FileSystem.device(path.deletingLastPathComponent) != FileSystem.device(backupDirectory!) {
            // A rename cannot reach the backup directory (see `secondaryDirectory`).
            backup = try secondaryDirectory(in: near ?? path.deletingLastPathComponent).appendingPathComponent(backup.lastPathComponent)
        }
        try record(.restore(backup: backup, original: path))
        try FileSystem.rename(path, backup)
    }

    /// Backup directories on other filesystems, by device. Each holds a
    /// file `primary` naming the backup directory whose journal covers it:
    /// `vmfix -b` leaves it to that journal's replay, and deletes it once
    /// the primary is gone.
    private var secondaries: [UInt64: String] = [:]
    public static let primaryName = "primary"

    private func secondaryDirectory(in dir: String) throws -> String {
        let device = FileSystem.device(dir) ?? 0
        if let existing = secondaries[device] { return existing }
        let secondary = try Self.makeBackupDirectory(in: dir)
        try FileSystem.writeAtomically(Array((backupDirectory! + "\n").utf8), to: secondary.appendingPathComponent(Self.primaryName))
        FileSystem.syncDirectory(dir)
        // Removed with the primary at commit or rollback; if the command dies
        // first, `vmfix -b` removes it after the primary's replay.
        secondaries[device] = secondary
        return secondary
    }

    public func rename(_ from: String, to: String) throws {
        try record(.rename(from: from, to: to))
        try FileSystem.rename(from, to)
    }

    /// `qemu-img rebase -u`: only the recorded backing path changes.
    /// `current` is the image's backing when the caller has read it already.
    public func rebase(_ image: String, onto backing: String, current known: QemuImg.Backing? = nil) throws {
        let current = try known ?? QemuImg.backing(of: image, environment: environment)
        guard let current, current.path != backing else { return }
        try record(.rebase(image: image, backing: current.path, format: current.format))
        try QemuImg.rebaseUnsafe(image, backing: backing, format: ImageProbe(backing)?.kind.format ?? current.format, environment: environment)
    }

    // MARK: Ending

    /// Keeps the changes: the journal goes first, so from then on a crash
    /// leaves only a backup directory for `vmfix -b` to delete.
    public func commit() {
        finished = true
        steps.removeAll()
        guard let dir = backupDirectory else { return }
        unlink(dir.appendingPathComponent(Self.journalName))
        FileSystem.syncDirectory(dir)
        close(journalFD)
        journalFD = -1
        FileSystem.removeTree(dir)
        for s in secondaries.values { FileSystem.removeTree(s) }
    }

    /// Undoes every step, last first. A step that cannot be undone (a disk
    /// still locked, a file in the way) does not stop the others; then the
    /// backup directory stays, journal and kept files with it, and the
    /// reasons are returned: `vmfix -b` replays it later (every undo is
    /// idempotent), where deleting it would lose what it holds.
    @discardableResult
    public func rollback() -> [String] {
        finished = true
        var failures: [String] = []
        for step in steps.reversed() {
            if let failure = Self.undo(step, environment: environment) { failures.append(failure) }
        }
        steps.removeAll()
        guard let dir = backupDirectory else { return failures }
        close(journalFD)
        journalFD = -1
        guard failures.isEmpty else { return failures }
        FileSystem.removeTree(dir)
        for s in secondaries.values { FileSystem.removeTree(s) }
        return failures
    }

    // MARK: Journal

    /// `vmtools-backup.` and ten random letters or digits, mode 0700. Not
    /// mkdtemp(3): it fills only the last six X of the template, and the
    /// name kept four literal X.
    static func makeBackupDirectory(in dir: String) throws -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)
        while true {
            let suffix = try SystemRandom.bytes(10).map { alphabet[Int($0) % alphabet.count] }
            let path = dir.appendingPathComponent("vmtools-backup." + String(decoding: suffix, as: UTF8.self))
            if mkdir(path, 0o700) == 0 { return path }
            guard errno == EEXIST else {
                throw VMToolsError(.failure, dir, "cannot create a backup directory here: \(FileSystem.errnoMessage())")
            }
        }
    }

    private func openJournal() throws {
        guard journalFD < 0 else { return }
        let dir = try Self.makeBackupDirectory(in: anchor)
        let path = dir.appendingPathComponent(Self.journalName)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            rmdir(dir)
            throw VMToolsError(.failure, path, "cannot create the undo journal: \(FileSystem.errnoMessage())")
        }
        flock(fd, LOCK_EX)
        // The first record's fdatasync makes the header durable with it.
        let head = Array("\(Self.header)\n".utf8)
        _ = head.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        FileSystem.syncDirectory(anchor)
        backupDirectory = dir
        journalFD = fd
    }

    /// Fields are NUL-separated (paths hold neither NUL nor newline).
    static func encode(_ undo: Undo) -> [UInt8] {
        let fields: [String]
        switch undo {
        case let .remove(p): fields = ["remove", p]
        case let .removeDirectory(p): fields = ["rmdir", p]
        case let .restore(b, o): fields = ["restore", b, o]
        case let .rename(f, t): fields = ["rename", f, t]
        case let .rebase(i, b, f): fields = ["rebase", i, b, f]
        case let .deleteSnapshot(i, t): fields = ["snapdel", i, t]
        case let .applySnapshot(i, t): fields = ["snapapply", i, t]
        }
        return Array(fields.joined(separator: "\u{0}").utf8)
    }

    static func decode(_ line: [UInt8]) -> Undo? {
        let f = line.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        switch (f.first, f.count) {
        case ("remove", 2): return .remove(f[1])
        case ("rmdir", 2): return .removeDirectory(f[1])
        case ("restore", 3): return .restore(backup: f[1], original: f[2])
        case ("rename", 3): return .rename(from: f[1], to: f[2])
        case ("rebase", 4): return .rebase(image: f[1], backing: f[2], format: f[3])
        case ("snapdel", 3): return .deleteSnapshot(image: f[1], tag: f[2])
        case ("snapapply", 3): return .applySnapshot(image: f[1], tag: f[2])
        default: return nil
        }
    }

    /// Undoes one step; says why when that was not possible.
    @discardableResult
    static func undo(_ step: Undo, environment: [String: String]) -> String? {
        switch step {
        case let .remove(p):
            FileSystem.removeTree(p)
            return FileSystem.lexists(p) ? "cannot remove \(p)" : nil
        case let .removeDirectory(p):
            for e in (try? FileSystem.listDirectory(p)) ?? [] where FileSystem.isSymlink(p.appendingPathComponent(e)) {
                unlink(p.appendingPathComponent(e))
            }
            rmdir(p)  // only when empty: anything else in it is not ours
            return nil
        case let .restore(backup, original):
            // The backup exists only if the step got that far.
            guard FileSystem.lexists(backup) else { return nil }
            if FileSystem.isDirectory(original) && !FileSystem.isSymlink(original) { FileSystem.removeTree(original) }
            guard Glibc.rename(backup, original) == 0 else { return "cannot put \(original) back: \(FileSystem.errnoMessage())" }
            FileSystem.syncDirectory(original.deletingLastPathComponent)
            return nil
        case let .rename(from, to):
            guard FileSystem.lexists(to), !FileSystem.lexists(from) else { return nil }
            guard Glibc.rename(to, from) == 0 else { return "cannot rename \(to) back to \(from): \(FileSystem.errnoMessage())" }
            FileSystem.syncDirectory(from.deletingLastPathComponent)
            return nil
        case let .rebase(image, backing, format):
            guard FileSystem.exists(image) else { return nil }
            do {
                try QemuImg.rebaseUnsafe(image, backing: backing, format: format, environment: environment)
                return nil
            } catch let e as VMToolsError {
                return e.description
            } catch {
                return "cannot rebase \(image)"
            }
        case let .deleteSnapshot(image, tag):
            return undoSnapshot(.delete, image: image, tag: tag, environment: environment)
        case let .applySnapshot(image, tag):
            return undoSnapshot(.apply, image: image, tag: tag, environment: environment)
        }
    }

    /// Deletes or applies `tag` in `image` if the image still holds it.
    /// qemu-img lets a tag be given twice and deletes one at a time: a
    /// deletion goes on until none is left.
    private static func undoSnapshot(_ action: QemuImg.SnapshotAction, image: String, tag: String,
                                     environment: [String: String]) -> String? {
        guard FileSystem.exists(image) else { return nil }
        guard let held = try? Qcow2SnapshotTable.read(image).filter({ $0.name == tag }).count else {
            return "cannot read the snapshots of \(image)"
        }
        do {
            for _ in 0..<(action == .delete ? held : min(held, 1)) {
                try QemuImg.snapshot(action, tag, image: image, environment: environment)
            }
            return nil
        } catch let e as VMToolsError {
            return e.description
        } catch {
            return "cannot change snapshot \(tag) of \(image)"
        }
    }

    /// What a backup directory left by a dead process holds.
    public enum Leftover: Equatable {
        /// Its operation is still running: leave it alone.
        case live
        /// Entries moved aside on another filesystem for the journal in
        /// this primary backup directory, which still exists.
        case secondary(of: String)
        /// The operation had committed (or never started): only delete it.
        case committed
        /// The operation was interrupted: replay these, then delete it.
        case interrupted([Undo])
    }

    public static func inspect(backupDirectory dir: String) -> Leftover {
        let path = dir.appendingPathComponent(journalName)
        if let text = try? FileSystem.readTextIfExists(dir.appendingPathComponent(primaryName)) {
            let p = text.split(separator: "\n").first.map(String.init) ?? ""
            return FileSystem.isDirectory(p) ? .secondary(of: p) : .committed
        }
        // A journal planted as a FIFO must not hold vmfix -b in open(2); readBytes refuses it.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return .committed }
        defer { close(fd) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { return .live }
        var bytes = (try? FileSystem.readBytes(path)) ?? []
        // A torn last record was never acted on: its step comes after it.
        while let last = bytes.last, last != UInt8(ascii: "\n") { bytes.removeLast() }
        var lines = bytes.split(separator: UInt8(ascii: "\n")).map(Array.init)
        guard !lines.isEmpty, String(decoding: lines.removeFirst(), as: UTF8.self) == header else { return .interrupted([]) }
        return .interrupted(lines.compactMap(decode))
    }

    /// `vmfix -b`: puts the tree back as it was before the interrupted
    /// operation. Stops at a step that cannot be undone (a disk still held
    /// by a `qemu-img` the dead command started, say) and says why; every
    /// step is idempotent, so replaying again later finishes the job.
    public static func replay(_ steps: [Undo], environment: [String: String]) -> String? {
        for step in steps.reversed() {
            if let failure = undo(step, environment: environment) { return failure }
        }
        return nil
    }
}
