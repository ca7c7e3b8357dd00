#if canImport(Glibc)
import Glibc
#endif

/// Listing and making directories.
extension FileSystem {
    /// `mkdir -p`: `path` and its missing parents, each made with `mode`
    /// (less the umask); an existing directory is left as it is.
    package static func makeDirectories(_ path: String, mode: mode_t) throws {
        if isDirectory(path) { return }
        let parent = path.deletingLastPathComponent
        if parent != path, !parent.isEmpty { try makeDirectories(parent, mode: mode) }
        guard mkdir(path, mode) == 0 || errno == EEXIST else {
            throw VMToolsError(.failure, path, "cannot create the directory: \(errnoMessage())")
        }
    }

    /// Names in a directory, excluding `.` and `..`, unsorted.
    package static func listDirectory(_ path: String) throws -> [String] {
        try listDirectoryEntries(path).map(\.name)
    }

    /// One name in a directory with the type `readdir` reports for it
    /// (`DT_UNKNOWN` where the file system does not say: callers then stat).
    package struct DirectoryEntry: Sendable {
        package let name: String
        let type: UInt8

        /// A directory itself, not a link to one (`lstat`).
        package func isDirectory(in dir: String) -> Bool {
            switch type {
            case UInt8(DT_DIR): return true
            case UInt8(DT_UNKNOWN):
                var st = stat()
                return lstat(dir.appendingPathComponent(name), &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
            default: return false
            }
        }

        /// `FileSystem.isRegularFile` (links followed) without a `stat` when `readdir` already knows.
        package func isRegularFile(in dir: String) -> Bool {
            switch type {
            case UInt8(DT_REG): return true
            case UInt8(DT_LNK), UInt8(DT_UNKNOWN): return FileSystem.isRegularFile(dir.appendingPathComponent(name))
            default: return false
            }
        }

        /// `FileSystem.isDirectory` (links followed), likewise.
        package func isDirectoryFollowingLinks(in dir: String) -> Bool {
            switch type {
            case UInt8(DT_DIR): return true
            case UInt8(DT_LNK), UInt8(DT_UNKNOWN): return FileSystem.isDirectory(dir.appendingPathComponent(name))
            default: return false
            }
        }
    }

    /// Runs `body` counting the directories it lists on this thread: a test
    /// proves with it that `vmfix -r` reads each directory once
    /// (Benchmarks/README.md, scale). Plain globals and a thread check, not
    /// a task-local: that would link the concurrency runtime and dispatch
    /// into the binary and slow every command's start.
    static func countingListings<T>(_ body: () throws -> T) rethrows -> (T, Int) {
        listingCount = 0
        countingThread = pthread_self()
        defer { countingThread = nil }
        return (try body(), listingCount)
    }

    nonisolated(unsafe) private static var countingThread: pthread_t?
    nonisolated(unsafe) private static var listingCount = 0

    /// Entries of a directory, excluding `.` and `..`, unsorted.
    package static func listDirectoryEntries(_ path: String) throws -> [DirectoryEntry] {
        if let t = countingThread, pthread_equal(t, pthread_self()) != 0 { listingCount += 1 }
        guard let d = opendir(path) else {
            throw VMToolsError(.failure, path, "cannot list directory: \(errnoMessage())")
        }
        defer { closedir(d) }
        var entries: [DirectoryEntry] = []
        while let entry = readdir(d) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { entries.append(DirectoryEntry(name: name, type: entry.pointee.d_type)) }
        }
        return entries
    }
}
