#if canImport(Glibc)
import Glibc
#endif

/// Which VM homes rest on a cached image (vmimage(1), CACHE): `ALG-HEX.users`
/// beside it, one canonical home per line, sorted bytewise, no duplicates,
/// changed under the cache's lock, kept right by vmcreate, vmcp, vmmv, vmrm
/// and vmfix the way a parent's childs.lst is.
///
/// The list may hold more homes than use the image, never fewer: a command
/// adds a home before the VM exists there and removes one after it is gone,
/// so a crash at any point leaves a stale line at worst. A stale line blocks
/// nothing (`isUser` decides) and `vmimage -c` drops it.
extension ImageCache {
    /// `ALG-HEX.users` in the cache.
    public func usersPath(of digest: ImageDigest) -> String {
        directory.appendingPathComponent(Self.stem(digest) + ".users")
    }

    /// The homes listed as users of `digest`, sorted; none when there is no list.
    public func users(of digest: ImageDigest) throws -> [String] {
        let p = usersPath(of: digest)
        // Its lines name homes vmimage -r trusts; a link would list another file's.
        try FileSystem.refuseLink(p)
        guard let text = try FileSystem.readTextIfExists(p, limit: SettingsText.maximumSize) else { return [] }
        return Self.normalizeUsers(text.unicodeScalars.split(separator: "\n").map { String($0) })
    }

    public func addUser(_ home: String, of digest: ImageDigest) throws {
        guard home.hasPrefix("/"), !home.contains("\n") else {
            throw VMToolsError(.failure, home, "an image user must be an absolute path without newlines")
        }
        try changeUsers(of: digest) { $0 + [home] }
    }

    public func removeUser(_ home: String, of digest: ImageDigest) throws {
        guard FileSystem.isDirectory(directory) else { return }
        try changeUsers(of: digest) { $0.filter { $0 != home } }
    }

    /// A VM moved from `old` to `new` (vmmv): one change of the list.
    public func moveUser(from old: String, to new: String, of digest: ImageDigest) throws {
        guard new.hasPrefix("/"), !new.contains("\n") else {
            throw VMToolsError(.failure, new, "an image user must be an absolute path without newlines")
        }
        try changeUsers(of: digest) { $0.filter { $0 != old } + [new] }
    }

    /// Rewrites the list under the cache's lock when `change` alters it;
    /// an empty list is no file.
    func changeUsers(of digest: ImageDigest, _ change: ([String]) -> [String]) throws {
        try withUsersLock {
            let before = try users(of: digest)
            let after = Self.normalizeUsers(change(before))
            guard after != before else { return }
            let p = usersPath(of: digest)
            if after.isEmpty {
                try FileSystem.removeFile(p)
            } else {
                try FileSystem.refuseLink(p)
                try FileSystem.writeAtomically(Array(after.map { $0 + "\n" }.joined().utf8), to: p, mode: 0o600)
            }
        }
    }

    static func normalizeUsers(_ list: [String]) -> [String] {
        Array(Set(list.filter { $0.hasPrefix("/") })).sorted(by: bytewiseLess)
    }

    /// Runs `body` holding an exclusive `flock` on the cache's `.lock`
    /// (created 0600, never through a link), waiting at most `wait` seconds.
    /// The kernel drops the flock when a process dies: no stale lock.
    package func withUsersLock<T>(wait: Double = 60, _ body: () throws -> T) throws -> T {
        guard FileSystem.isDirectory(directory) else {
            throw VMToolsError(.failure, directory, "the image cache does not exist")
        }
        let path = directory.appendingPathComponent(".lock")
        let fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0o600)
        guard fd >= 0 else {
            let e = errno
            if e == ELOOP || FileSystem.isSymlink(path) { throw FileSystem.plantedLink(path) }
            throw VMToolsError(.failure, path, "cannot open the image cache's lock: \(FileSystem.errnoMessage(e))")
        }
        defer { close(fd) }
        let deadline = SystemClock.now() + wait
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                throw VMToolsError(.failure, path, "cannot lock the image cache: \(FileSystem.errnoMessage())")
            }
            guard SystemClock.now() < deadline else {
                throw VMToolsError(.failure, directory, "the image cache stayed locked by another command for \(Int(wait)) s")
            }
            try Interrupt.check()
            SystemClock.sleep(0.05)
        }
        return try body()
    }
}

/// Whether a home uses a cached image (vmimage(1), CACHE): cheap for every
/// VM that was not made from a catalog entry, which records no digest.
extension ImageCache {
    /// `vm_image_digest` of the VM's own `vm.settings` (not inherited from
    /// a parent: a fork's disks rest on its parent's, which is the user);
    /// nil when it records none or the file cannot be read.
    public static func recordedDigest(home: String, global: GlobalConfig) -> ImageDigest? {
        guard let file = try? VMSettingsFile.read(global.settingsPath(in: home)),
              let value = file.value(SettingKey.imageDigest), !value.isEmpty else { return nil }
        return ImageDigest(parsing: value)
    }

    /// The cached image of `digest` the VM's disks rest on — a storage
    /// path or a file of a qcow2's backing chain named `ALG-HEX.EXT` — in
    /// whatever cache it is; nil when none does. The cache is found from
    /// the disk, so a VM made with another `XDG_CACHE_HOME` updates its own.
    public static func base(of home: String, digest: ImageDigest, global: GlobalConfig,
                            environment: [String: String]) -> String? {
        guard let file = try? VMSettingsFile.read(global.settingsPath(in: home)) else { return nil }
        return base(among: restingFiles(file, home: home, environment: environment).files, digest: digest)
    }

    /// The first of `images` or of their qcow2 backing chains that is a
    /// cached image of `digest` (`ALG-HEX.EXT`).
    public static func base(among images: [String], digest: ImageDigest) -> String? {
        images.lazy.flatMap { [$0] + ImageFormat.qcow2BackingChain($0) }.first { isImageFile($0, of: digest) }
    }

    /// The local files the VM's own disks and CD-ROMs consist of: each
    /// storage path and its qcow2 backing chain. `unreadable` is set when
    /// a storage path cannot be read (its chain is unknown).
    static func restingFiles(_ file: VMSettingsFile, home: String, environment: [String: String]) -> (files: [String], unreadable: Bool) {
        var files: [String] = []
        var unreadable = false
        for (name, value) in file.assignments where SettingName.isStorageBackend(name) && !value.isEmpty {
            let b = StorageBackend(value)
            guard !b.isRemote, !b.location.isEmpty else { continue }
            let path = b.path(home: home, environment: environment)
            guard FileSystem.isReadable(path) else {
                unreadable = true
                continue
            }
            files.append(path)
            files += ImageFormat.qcow2BackingChain(path)
        }
        return (files, unreadable)
    }

    /// Whether `path` is named as a cached image of `digest` is (`ALG-HEX.EXT`).
    static func isImageFile(_ path: String, of digest: ImageDigest) -> Bool {
        let name = path.lastPathComponent, stem = Self.stem(digest) + "."
        return name.hasPrefix(stem) && !name.hasSuffix(".users") && !name.hasSuffix(".record") && name.utf8.count > stem.utf8.count
    }

    /// Whether the VM at `home` still uses this cache's image of `digest`:
    /// a VM whose own settings record the digest and whose disks rest on
    /// the image here. A disk that cannot be read counts as resting on it,
    /// so an image is never removed from under a VM on a missing mount.
    public func isUser(_ home: String, of digest: ImageDigest, global: GlobalConfig, environment: [String: String]) -> Bool {
        let settings = global.settingsPath(in: home)
        // vmcreate lists a home before it makes the disk and writes vm.settings, under the home's
        // lock: while that lock is there, the home is being made and counts as a user.
        if !FileSystem.exists(settings), FileSystem.isSymlink(home.appendingPathComponent(global.fileNames.lock)) { return true }
        guard let file = try? VMSettingsFile.read(settings),
              let value = file.value(SettingKey.imageDigest), ImageDigest(parsing: value) == digest else { return false }
        let resting = Self.restingFiles(file, home: home, environment: environment)
        let here = FileSystem.realPath(directory) ?? directory
        return resting.unreadable || resting.files.contains { f in
            Self.isImageFile(f, of: digest) && (FileSystem.realPath(f.deletingLastPathComponent) ?? f.deletingLastPathComponent) == here
        }
    }

    /// The listed users of `digest` that still use it, and the stale
    /// lines (homes gone, or no longer resting on it).
    public func checkedUsers(of digest: ImageDigest, global: GlobalConfig,
                             environment: [String: String]) throws -> (live: [String], stale: [String]) {
        var live: [String] = [], stale: [String] = []
        for home in try users(of: digest) {
            if isUser(home, of: digest, global: global, environment: environment) { live.append(home) } else { stale.append(home) }
        }
        return (live, stale)
    }
}
