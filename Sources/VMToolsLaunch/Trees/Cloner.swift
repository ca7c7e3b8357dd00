import VMToolsCore
import VMToolsQEMU

#if canImport(Glibc)
import Glibc
#endif

/// How `vmcp` and `vmfork` copy (vmcp(1)); read from their shared options.
package struct CloneOptions: Sendable, Equatable {
    package var mode: CloneJob.Action
    /// `-R`: the source's descendants too.
    package var childRecursion = false
    /// `-r`: every VM below the source.
    package var directoryRecursion = false
    /// `-n`: the source is not locked (read-only media), only checked.
    package var noLock = false
    package var keepUnique = false
    package var snapshot = false
    package var compress = false
    /// `-o` and `-y`.
    package var settings = CommandLineSettings()
    /// Clone modules added (`-m`) and removed (`-M`) for this run.
    package var addModules: [String] = []
    package var removeModules: [String] = []

    package init(mode: CloneJob.Action) { self.mode = mode }
}

/// What `vmcp` and `vmfork` share (vmcp(1), vmfork(1)): one (source,
/// destination) pair at a time, all or nothing, with the source's
/// descendants (`-R`) or every VM below it (`-r`). It does not print: each
/// pair's outcome goes to `report`.
package struct Cloner {
    /// One pair's outcome.
    package enum Event {
        case made(source: String, home: String, mode: CloneJob.Action)
        case failed(VMToolsError)
    }

    var options: CloneOptions
    var modules: [ModuleChoice]
    var global: GlobalConfig
    var resolver: SettingsResolver
    var cwd: String
    var environment: [String: String]
    /// For lock waits and the clone modules' notices.
    var console: Console
    var report: (Event) -> Void

    var mode: CloneJob.Action { options.mode }
    var cli: CommandLineSettings { options.settings }

    package init(_ options: CloneOptions, global: GlobalConfig, resolver: SettingsResolver, cwd: String, environment: [String: String],
         console: Console, report: @escaping (Event) -> Void) throws {
        self.options = options
        self.global = global
        self.resolver = resolver
        self.cwd = cwd
        self.environment = environment
        self.console = console
        self.report = report
        modules = try ModuleRegistry.cloneModules(global.settings, add: options.addModules, remove: options.removeModules,
                                                  paths: global.paths, console: console)
    }

    /// Each (operand, destination) pair on its own, `resolve` turning the
    /// operand into the source home; stops at Ctrl-C.
    package func cloneEach(_ pairs: [(String, String)], resolve: (String) throws -> String) -> ExitCode {
        var failed = false
        for (operand, destination) in pairs {
            do {
                let source = try resolve(operand)
                let made = try clone(source, to: destination)
                report(.made(source: source, home: made, mode: mode))
            } catch {
                failed = true
                if let e = error as? VMToolsError { report(.failed(e)) }
                if Interrupt.pending() != nil { break }
            }
        }
        return failed ? .failure : .success
    }

    /// Copies or forks `source` (canonical) to `destination`; returns the new home.
    func clone(_ source: String, to destination: String) throws -> String {
        let root = try Self.newHome(for: source, at: destination, cwd: cwd, global: global)
        let locks = LockSet(global: global, console: console)
        let tx = Transaction(anchor: root.deletingLastPathComponent, environment: environment)
        let users = ImageUserChanges(global: global, environment: environment)
        return try tx.run(holding: locks, users: users) {
            var run = Run(cloner: self, source: source, root: root, locks: locks, tx: tx, users: users)
            try run.plan()
            try run.execute()
            return root
        }
    }

    /// An existing directory receives `<dir>/<source name>` (or `_1`, `_2` …);
    /// anything else is the new home's own path (vmcp(1), vmtools(1)).
    static func newHome(for source: String, at destination: String, cwd: String, global: GlobalConfig) throws -> String {
        let dest = try FileSystem.canonicalize(destination, cwd: cwd)
        guard FileSystem.isDirectory(dest) else {
            guard FileSystem.isDirectory(dest.deletingLastPathComponent), FileSystem.isWritable(dest.deletingLastPathComponent) else {
                throw VMToolsError(.failure, dest, "its directory does not exist or is not writable")
            }
            if FileSystem.exists(dest) { throw VMToolsError(.failure, dest, "exists and is not a directory") }
            return dest
        }
        // The source itself is never free (it holds vm.settings), so a copy
        // into its own directory lands beside or inside it, never on it.
        return FileSystem.newPath(in: dest, base: source.lastPathComponent) { !FileSystem.exists($0) || FileSystem.isEmptyDirectory($0) }
    }

    /// One pair's work: which directories and VMs go where, then the copies.
    struct Run {
        let cloner: Cloner
        let source: String
        let root: String
        let locks: LockSet
        let tx: Transaction
        /// Copies whose disks still rest on a cached image are listed among its users.
        let users: ImageUserChanges
        /// Source directory or VM home → its new path.
        var placed: [String: String] = [:]
        var order: [String] = []
        var done: Set<String> = []
        var imageMap: [String: String] = [:]

        init(cloner: Cloner, source: String, root: String, locks: LockSet, tx: Transaction, users: ImageUserChanges) {
            self.cloner = cloner
            self.source = source
            self.root = root
            self.locks = locks
            self.tx = tx
            self.users = users
        }

        var global: GlobalConfig { cloner.global }

        /// Collects the sources and locks them (vmcp(1), vmtools(1) LOCKING): the VMs and
        /// directories copied, before anything is written.
        mutating func plan() throws {
            let isVM = VMHome.isHome(source, global: global)
            guard isVM || cloner.options.directoryRecursion else {
                throw VMToolsError(.failure, source, "not a VM home (no \(global.fileNames.settings))")
            }
            placed[source] = root
            order = [source]
            if cloner.options.directoryRecursion {
                // A copy made inside its own source (vmcp(1)) is not part of it.
                // Nor is a VM's TPM state or its snapshots' (cloneFirmwareState, cloneSnapshots).
                for dir in FileSystem.subdirectories(source) where !FileSystem.isWithin(dir, root) && !isTPMState(dir) {
                    placed[dir] = root + dir.dropFirst(source.count)
                    order.append(dir)
                }
            }
            if cloner.options.childRecursion {
                order += try ChildList.descendants(of: order.filter { VMHome.isHome($0, global: global) }, known: Set(order),
                                                   global: global, subject: source)
            }
            for dir in order {
                if cloner.options.noLock {
                    if let p = RunningState.process(home: dir, global: global) {
                        throw VMToolsError(.failure, dir, "is running (pid \(p.pid)); stop it first (vmdown)")
                    }
                } else {
                    try locks.lock(dir, whatFor: "its disks are in use")
                }
            }
        }

        mutating func execute() throws {
            for dir in order { try process(dir) }
        }

        mutating func process(_ src: String) throws {
            guard !done.contains(src) else { return }
            done.insert(src)
            guard VMHome.isHome(src, global: global) else {
                try tx.makeDirectory(placed[src]!)
                return
            }
            let vm = try cloner.resolver.loadVM(home: src, global: global)
            try HostPathPolicy.require(vm, global: global, environment: cloner.environment)
            // A parent copied in this run goes first, so the links can be translated.
            var newParent: String? = nil
            var action = cloner.mode
            if src != source, let parent = vm.parent, order.contains(parent) {
                try process(parent)
                newParent = placed[parent]
                action = .copy
            }
            let home: String
            if let p = placed[src] {
                home = p
            } else {
                // -R: inside the new parent's home, whatever the original layout.
                let inside = newParent ?? root
                home = FileSystem.newPath(in: inside, base: src.lastPathComponent) { !FileSystem.exists($0) }
                placed[src] = home
            }
            try Interrupt.check()
            if !FileSystem.isDirectory(home) && FileSystem.exists(home) {
                throw VMToolsError(.failure, home, "exists and is not a directory")
            }
            try tx.makeDirectory(home)
            try locks.lock(home)
            // Read before the modules run: what the copy must still hold (vmcp(1) SNAPSHOTS).
            let snapshots = action == .fork ? [] : try VMSnapshots(vm, environment: cloner.environment).listIfAny()
            var job = CloneJob(action: action, source: vm, destination: home, keepUnique: cloner.options.keepUnique, snapshot: cloner.options.snapshot,
                               environment: cloner.environment, console: cloner.console, transaction: tx)
            job.compress = cloner.options.compress
            job.imageMap = imageMap
            for m in cloner.modules { try m.clone(&job) }
            imageMap = job.imageMap
            try cloneFirmwareState(from: src, to: home, action: action)
            for e in cloner.cli.entries where e.name.hasPrefix("vm_") && e.name != SettingKey.name { job.override(e.name, e.value) }
            let name = src == source ? cloner.cli.value(SettingKey.name) ?? home.lastPathComponent : home.lastPathComponent

            var doc: SettingsDocument
            switch action {
            case .fork:
                doc = SettingsDocument(comment: "Forked from '\(vm.name)':\n\(src)", parent: src, name: name, entries: job.overrides)
            case .copy:
                let how = newParent == nil ? "Copied from" : "Recursive copy of"
                doc = SettingsDocument(rewriting: vm.file, comment: "\(how) '\(vm.name)':\n\(src)", name: name)
                doc.parent = newParent ?? vm.parent
                doc.entries = merge(doc.entries, job.overrides)
            case .autonomous:
                var flat: [SettingsDocument.Entry] = []
                for n in vm.settings.names where SettingKey.isRecorded(n) {
                    switch vm.settings.provenance(n) {
                    case .vmFile?, .template?, .commandLine?: flat.append(.init(n, vm.settings.value(n)))
                    default: break
                    }
                }
                doc = SettingsDocument(comment: "Autonomous copy of '\(vm.name)':\n\(src)", name: name, entries: merge(flat, job.overrides))
                doc.ejectMedia = false
            }
            let settingsPath = global.settingsPath(in: home)
            try locks.requireHeld(home)
            try tx.writeFile(Array(try doc.render().utf8), to: settingsPath)
            try cloneSnapshots(of: vm, snapshots, to: home, action: action)
            try users.made(home)
            if let parent = doc.parent {
                try register(home, in: parent)
            }
            // The source passed the host path rule and -o is the user's, so
            // what the new file hands out is accepted (vm.settings(5), HOST
            // PATHS); failing that, vmup names the way out.
            _ = try? HostPathPolicy.accept(home: home, global: global, environment: cloner.environment)
        }

        /// The parent lists its new child (both sides of the link, vm.settings(5) CHILDS.LST).
        func register(_ home: String, in parent: String) throws {
            guard VMHome.isHome(parent, global: global) else {
                throw VMToolsError(.failure, parent, "the parent VM is missing; 'vmfix -p' repairs the link")
            }
            // Only its list changes: a parent running in snapshot mode is fine.
            try locks.lock(parent, allowRunning: true)
            var list = try ChildList.read(home: parent, global: global)
            try list.add(home)
            try tx.writeFile(Array(list.text.utf8), to: ChildList.path(in: parent, global: global))
        }

        func merge(_ base: [SettingsDocument.Entry], _ overrides: [SettingsDocument.Entry]) -> [SettingsDocument.Entry] {
            var out = base
            for o in overrides {
                if let i = out.firstIndex(where: { $0.name == o.name }) { out[i].value = o.value } else { out.append(o) }
            }
            return out
        }
    }
}
