import VMToolsCore
import VMToolsQEMU
import VMToolsLaunch

#if canImport(Glibc)
import Glibc
#endif

/// What killed commands leave behind (vmfix(1) -b, -l, -d): backup and
/// work directories, lock files, run-time files. Each test walks the one
/// `DirectoryScan` run() made.
extension VMFixCommand.Fixer {
    // MARK: -b

    /// Returns whether anything was undone or removed.
    mutating func backups(_ scan: DirectoryScan) -> Bool {
        workDirectories(scan)
        var found: [String] = []
        var seen = Set<String>()
        for dir in scan.directories {
            for entry in dir.entries where entry.name.hasPrefix("vmtools-backup.") && entry.isDirectoryFollowingLinks(in: dir.path) {
                let path = dir.path.appendingPathComponent(entry.name)
                if seen.insert(path).inserted { found.append(path) }
            }
        }
        // Journals first: a secondary directory (another filesystem's
        // part of an operation) waits for its primary's replay.
        var stale: [(String, Transaction.Leftover)] = []
        var waiting: [String] = []
        for path in found {
            switch Transaction.inspect(backupDirectory: path) {
            case .live: console.notice("\(path): belongs to a vmtools command still running; left alone")
            case .secondary: waiting.append(path)
            case let state: stale.append((path, state))
            }
        }
        let report = stale.map(\.0) + waiting
        guard !report.isEmpty else { return false }
        issue("leftover backup directories:")
        console.items(report)
        guard !checkOnly else { return false }
        for (path, state) in stale {
            if case let .interrupted(steps) = state {
                if let failure = Transaction.replay(steps, environment: environment) {
                    failed(VMToolsError(.failure, path, "the interrupted operation could not be undone (\(failure)); kept for another try"))
                    continue
                }
                // Undone, or for a vmsnap revert or delete finished: its journal rolls forward.
                console.solved("\(path): the interrupted operation's journal was replayed (\(steps.count) steps)")
            }
            FileSystem.removeTree(path)
            console.solved("\(path): removed")
        }
        for path in waiting {
            if case let .secondary(primary) = Transaction.inspect(backupDirectory: path) {
                console.notice("\(path): part of the operation in \(primary), which is still there; run vmfix -b where that is")
                continue
            }
            FileSystem.removeTree(path)
            console.solved("\(path): removed")
        }
        return true
    }


    // MARK: -b (work directories)

    /// What a killed import or export left (`.vmtools-import.*`,
    /// `.vmtools-export.*`: an unpacked archive, half-converted disks):
    /// nothing in them is the user's, so they go whole. One still
    /// flocked belongs to a command that runs.
    mutating func workDirectories(_ scan: DirectoryScan) {
        var stale: [String] = []
        for dir in scan.directories {
            for entry in dir.entries where WorkDirectory.isWorkName(entry.name) && entry.isDirectory(in: dir.path) {
                let path = dir.path.appendingPathComponent(entry.name)
                if WorkDirectory.isInUse(path) {
                    console.notice("\(path): belongs to a vmtools import or export still running; left alone")
                } else {
                    stale.append(path)
                }
            }
        }
        guard !stale.isEmpty else { return }
        issue("leftover import and export directories:")
        console.items(stale)
        guard !checkOnly else { return }
        for path in stale {
            FileSystem.removeTree(path)
            console.solved("\(path): removed")
        }
    }


    // MARK: -l

    /// Returns whether stale locks were found.
    mutating func locks(_ scan: DirectoryScan) -> Bool {
        let name = global.fileNames.lock
        let host = FileSystem.hostName()
        var stale: [String] = []
        for entry in scan.directories where entry.has(name) {
            let dir = entry.path
            let path = dir.appendingPathComponent(name)
            guard FileSystem.isSymlink(path), let target = FileSystem.readLink(path) else { continue }
            let owner = HomeLock.Owner(linkTarget: target)
            if owner.pid != nil, owner.host == host, FileSystem.isFlocked(dir) {
                console.notice("\(path): held by \(owner.description), which is running; left alone")
                continue
            }
            stale.append(path)
        }
        guard !stale.isEmpty else { return false }
        issue("leftover lock files:")
        console.items(stale)
        if !checkOnly {
            for path in stale where unlink(path) == 0 || errno == ENOENT { console.solved("\(path): removed") }
        }
        return true
    }


    // MARK: -d

    mutating func runtimeFiles(_ scan: DirectoryScan) {
        let names = global.fileNames
        var found: [(String, [String])] = []
        for entry in scan.directories {
            let dir = entry.path
            // A read-only home keeps them in its run-time directory.
            let runDirectory = RuntimeDirectory.forHome(dir)
            let own = entry.entries.map(\.name).filter(names.isWork).map { dir.appendingPathComponent($0) }
            // Listed only when there (vmfix walks a large tree once: FixScaleTests).
            let run = FileSystem.lexists(runDirectory) ? names.workFiles(in: runDirectory).map { runDirectory.appendingPathComponent($0) } : []
            let files = own + run
            guard !files.isEmpty else { continue }
            if let p = RunningState.process(home: dir, global: global) {
                console.notice("\(dir): running (pid \(p.pid)), its run-time files are in use")
                continue
            }
            found.append((dir, files))
        }
        guard !found.isEmpty else { return }
        foundIssue = true
        console.notice("leftover run-time files:")
        console.items(found.flatMap(\.1))
        guard !checkOnly else { return }
        for (dir, files) in found {
            do {
                let locks = LockSet(global: global, console: console)
                locks.readOnlyHomes = true
                try locks.lock(dir)
                for f in files { try FileSystem.removeFile(f, sync: false) }
                locks.releaseAll()
                console.solved("\(dir): run-time files removed")
            } catch let e as VMToolsError {
                failed(e)
            } catch {}
        }
    }
}
