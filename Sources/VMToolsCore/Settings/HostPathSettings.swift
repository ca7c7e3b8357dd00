#if canImport(Glibc)
import Glibc
#endif

/// Host paths a start hands to the guest, and who may allow them
/// (vm.settings(5) HOST PATHS, vmtools.conf(5) `cfg_host_paths`).
extension SettingKey {
    public static let hostPaths = "cfg_host_paths"
}

extension GlobalConfig {
    /// `cfg_host_paths`: directories and files a VM's own settings may name
    /// outside its tree, real paths. Read from the global configuration only
    /// (defaults, vmtools.conf, `-o`): a VM's file or a template cannot set
    /// a `cfg_*` value, so a VM cannot grant itself host paths.
    public func hostPathAllowList() throws -> [String] {
        let v = settings.value(SettingKey.hostPaths)
        var list: [String] = []
        for part in v.split(separator: ":") where !part.isEmpty {
            guard part.hasPrefix("/") else {
                throw typed.invalid(SettingKey.hostPaths, "'\(part)' is not an absolute path (colon-separated absolute paths)")
            }
            list.append(FileSystem.realPath(String(part)) ?? String(part))
        }
        return list
    }
}

/// The host path sets the user accepted (vmfix(1) -H, vmcreate(1)): in
/// `${XDG_STATE_HOME:-$HOME/.local/state}/vmtools/accepted-host-paths`, one
/// SHA-256 a line, each over the sorted `setting=real-path` lines of one
/// settings file's host paths outside its VM's tree. Keyed on what the file
/// hands out, not where it lies, so a moved VM keeps its acceptance.
public struct AcceptedHostPaths: Sendable {
    public let path: String?

    public init(environment: [String: String]) {
        if let state = environment["XDG_STATE_HOME"], state.hasPrefix("/") {
            path = state.appendingPathComponent("vmtools/accepted-host-paths")
        } else if let home = environment["HOME"], home.hasPrefix("/") {
            path = home.appendingPathComponent(".local/state/vmtools/accepted-host-paths")
        } else {
            path = nil
        }
    }

    /// The digest of one file's set of lines.
    public static func digest(_ lines: [String]) -> String {
        var h = SHA256()
        for line in lines.sorted(by: bytewiseLess) { h.update(Array((line + "\n").utf8)) }
        return h.finalize()
    }

    /// The accepted digests; none when the file is missing or unreadable.
    public func load() -> Set<String> {
        guard let path, FileSystem.isRegularFile(path), let text = try? FileSystem.readTextIfExists(path, limit: 16 << 20) else { return [] }
        return Set(text.split(separator: "\n").map(String.init).filter { $0.utf8.count == 64 && $0.allSatisfy(\.isHexDigit) })
    }

    /// Adds digests: the file replaced whole (temp file, fsync, rename), 0600.
    public func record(_ digests: [String]) throws {
        guard !digests.isEmpty else { return }
        guard let path else { throw VMToolsError(.failure, nil, "cannot record accepted host paths: neither XDG_STATE_HOME nor HOME is set") }
        let dir = path.deletingLastPathComponent
        try FileSystem.makeDirectories(dir, mode: 0o700)
        // Two commands recording at once must not lose each other's lines.
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { throw VMToolsError(.failure, dir, "cannot open: \(FileSystem.errnoMessage())") }
        defer { close(dfd) }
        while flock(dfd, LOCK_EX) != 0, errno == EINTR {}
        let known = load()
        let added = digests.filter { !known.contains($0) }
        guard !added.isEmpty else { return }
        // Kept in the order written: the oldest acceptances first.
        let old = (try? FileSystem.readTextIfExists(path, limit: 16 << 20)) ?? nil
        var text = old ?? ""
        if !text.isEmpty, !text.hasSuffix("\n") { text += "\n" }
        for d in Set(added).sorted() { text += d + "\n" }
        try FileSystem.writeAtomically(Array(text.utf8), to: path, mode: 0o600)
        chmod(path, 0o600)
    }
}
