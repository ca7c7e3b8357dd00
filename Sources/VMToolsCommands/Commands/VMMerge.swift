import VMToolsCore
import VMToolsLaunch

/// `vmmerge`: fold a VM into its parent (`-p`, the default) or into its
/// children (`-c`), collapsing one level of a tree (vmmerge(1)).
///
/// Fast mode commits overlays in place with `qemu-img commit`, which cannot
/// be undone once it ran; `-s` (forced for several children) works on copies
/// so that any failure, Ctrl-C or crash leaves the tree as it was.
public enum VMMergeCommand: Command {
    public static let spec = CommandSpec(
        name: "vmmerge",
        summary: "merge a virtual machine with its parent or children",
        options: [
            OptionSpec("c", "merge the VM into its children"),
            OptionSpec("p", "merge the VM into its parent (default)"),
            OptionSpec("s", "safe mode: work on copies so a failure can be rolled back"),
            OptionSpec("y", "assume yes: never prompt"),
        ],
        operands: "[vmhome ...]",
        operandCompletion: .home,
        exitCodes: [(0, "every VM was merged"), (1, "a merge failed or was cancelled (and was undone)"), (2, "wrong usage")]
    )

    /// What the command line asks for (vmmerge(1)).
    struct Options {
        /// `-c`; `-p` (the default) otherwise.
        var intoChildren: Bool
        var safe: Bool
        var commandLine: CommandLineSettings

        init(_ args: ParsedArguments) throws {
            intoChildren = args.has("c")
            if intoChildren && args.has("p") { throw VMToolsError.usage("-c and -p cannot be combined") }
            safe = args.has("s")
            commandLine = try SharedOptions.settings(args)
        }
    }

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        let options = try Options(args)
        Interrupt.block()
        let (global, resolver) = try context.loadGlobal(args, commandLine: options.commandLine)
        let prompter = Prompter(assumeYes: global.typed.assumeYes, console: context.console, stdin: context.stdin)
        var failed = false
        for operand in args.operands.isEmpty ? ["."] : args.operands {
            do {
                let home = try VMHome.locate(operand, cwd: context.cwd, global: global)
                var merge = Merge(home: home, safe: options.safe, global: global, resolver: resolver, prompter: prompter, context: context)
                try options.intoChildren ? merge.intoChildren() : merge.intoParent()
                context.console.info("\(home): merged")
            } catch let e as VMToolsError {
                failed = true
                context.console.error(e)
                if Interrupt.pending() != nil { break }
            }
        }
        return failed ? .failure : .success
    }

    struct Merge {
        let home: String
        var safe: Bool
        let global: GlobalConfig
        let resolver: SettingsResolver
        let prompter: Prompter
        let context: Context
        var env: [String: String] { context.environment }

        func file(_ h: String) throws -> VMSettingsFile { try VMSettingsFile.read(global.settingsPath(in: h)) }

        /// Locks the VM and its descendants; refuses a home that holds
        /// directories other than its children's (they would be deleted).
        func lockTree(_ locks: LockSet) throws {
            try locks.lock(home, whatFor: "a running VM cannot be merged")
            for c in try ChildList.descendants(of: [home], global: global) {
                try locks.lock(c, whatFor: "a running VM cannot be merged")
            }
            let children = try ChildList.read(home: home, global: global).children
            for entry in try FileSystem.listDirectory(home) {
                let p = home.appendingPathComponent(entry)
                guard FileSystem.isDirectory(p), !FileSystem.isSymlink(p), !entry.hasPrefix("vmtools-backup."),
                      entry != VMFileNames.tpmDirectory, entry != VMSnapshots.directoryName else { continue }
                if !children.contains(where: { FileSystem.isWithin($0, p) }) {
                    throw VMToolsError(.failure, p, "is not a child VM of '\(home)' and would be deleted with it; move it out first")
                }
            }
        }

        /// A safe copy of `image` next to it: a new qcow2 with the same
        /// data and the same backing file (not flattened); a file copy when
        /// the image holds snapshots.
        func safeCopy(of image: String, _ tx: Transaction) throws -> String {
            let copy = FileSystem.newPath(in: image.deletingLastPathComponent, base: ".\(image.lastPathComponent).merge") { !FileSystem.lexists($0) }
            try tx.record(.remove(copy))
            if try snapshotKeepingCopy(of: image, to: copy) { return copy }
            try QemuImg.convert(image, to: copy, backing: try QemuImg.backing(of: image, environment: env), compress: false,
                                progress: false, environment: env)
            return copy
        }

        /// Folds `overlay` into `base`, its backing file. Fast: in place.
        /// Safe: into a copy of `base`, returned, the originals untouched.
        func commit(_ overlay: String, into base: QemuImg.Backing, _ tx: Transaction) throws -> String {
            try Interrupt.check()
            guard safe else {
                try QemuImg.commit(overlay, environment: env)
                return base.path
            }
            let copy = try safeCopy(of: base.path, tx)
            try tx.rebase(overlay, onto: copy, current: base)
            try QemuImg.commit(overlay, environment: env)
            // The copy replaces an original the commit deletes: it must be on disk first.
            try FileSystem.syncFile(copy)
            return copy
        }

        // MARK: -p

        mutating func intoParent() throws {
            let locks = LockSet(global: global, console: context.console)
            let own = try file(home)
            guard let parent = own.parent, VMHome.isHome(parent, global: global) else {
                throw VMToolsError(.failure, home, "no parent to merge to")
            }
            let tx = Transaction(anchor: parent, environment: env)
            let mover = TreeMover(global: global, locks: locks, tx: tx, environment: env)
            // A VM made from a cached image may hand it on: who rests on it changes (vmimage(1), CACHE).
            let users = ImageUserChanges(global: global, environment: env)
            try tx.run(holding: locks, mover: mover, users: users) {
                try lockTree(locks)
                try locks.lock(parent, whatFor: "its disks change")
                let siblings = try ChildList.read(home: parent, global: global).children
                guard !siblings.isEmpty else { throw VMToolsError(.failure, home, "its parent \(parent) does not point back; run 'vmfix -p'") }
                guard siblings == [home] else {
                    throw VMToolsError(.failure, home, "its parent must have only one child to merge into it; it has: " + siblings.joined(separator: ", "))
                }
                let parentVM = try resolver.loadVM(home: parent, global: global)
                let vm = try resolver.loadVM(home: home, global: global)
                // Its disks move into the parent and commit into the parent's: none may be a host file it was not given.
                try HostPathPolicy.require(vm, global: global, environment: env)
                try refuseSnapshots(vm, "merging into its parent would fold away with its disks")
                try autoSnapshot(parentVM, tx)
                let parentFile = try file(parent)
                var entries = SettingsDocument(rewriting: parentFile, comment: "").entries
                var imageMap: [String: String] = [:]
                // Step 1: disks. An overlay on the parent's disk of that slot is committed into it;
                // a disk of the child's own moves into the parent's home.
                for (name, value) in own.assignments where name != SettingKey.name {
                    var newValue = value
                    if SettingName.isStorageBackend(name), !value.isEmpty {
                        let b = StorageBackend(value)
                        let image = b.path(home: home, environment: env)
                        let parentImage = StorageBackend(parentVM.settings.value(name)).path(home: parent, environment: env)
                        if !b.isRemote, FileSystem.isRegularFile(image) {
                            let backing = try QemuImg.backing(of: image, environment: env)
                            // Only into a disk of the parent's own: an inherited one may have other users.
                            if let backing, backing.path == parentImage, parentImage.deletingLastPathComponent == parent, b.prefix != "snap" {
                                let merged = try commit(image, into: backing, tx)
                                if merged != parentImage {
                                    try tx.moveAside(parentImage)
                                    try tx.rename(merged, to: parentImage)
                                }
                                try tx.moveAside(image)
                                imageMap[image] = parentImage
                                continue  // the parent's own setting stays
                            }
                            if image.deletingLastPathComponent == home {
                                let dest = FileSystem.newPath(in: parent, base: image.lastPathComponent)
                                try tx.rename(image, to: dest)
                                imageMap[image] = dest
                                newValue = (b.prefix.map { $0 + ":" } ?? "") + dest
                            }
                        }
                    }
                    entries.removeAll { $0.name == name }
                    entries.append(.init(name, newValue))
                }
                var doc = SettingsDocument(rewriting: parentFile, comment: "Merged with '\(home)'",
                                           name: parentFile.value(SettingKey.name) ?? parent.lastPathComponent)
                doc.entries = entries
                try tx.writeFile(Array(try doc.render().utf8), to: global.settingsPath(in: parent))
                try users.made(parent)
                // Step 2: the parent lists the grandchildren instead.
                let relink = Relinker(global: global, tx: tx, environment: env)
                try relink.updateChildList(in: parent, remove: home, add: nil)
                try adopt(children: ChildList.read(home: home, global: global).children, from: home, by: parent,
                          into: parent, imageMap: imageMap, mover: mover, tx: tx)
                try mergeFirmwareState(from: home, into: parent, replace: true, tx)
                // Step 3: the merged VM's home goes.
                users.willRemove(home)
                try tx.moveAside(home)
            }
        }

        /// Relinks `children` of the merged VM `from` to `newParent` (nil:
        /// they become roots); those living inside `from` move to `dir`.
        func adopt(children: [String], from: String, by newParent: String?, into dir: String,
                   imageMap: [String: String], mover: TreeMover, tx: Transaction) throws {
            let relink = Relinker(global: global, tx: tx, environment: env)
            for var child in children where VMHome.isHome(child, global: global) {
                if FileSystem.isWithin(child, from) {
                    let dest = FileSystem.newPath(in: dir, base: child.lastPathComponent) { !FileSystem.exists($0) }
                    try mover.move(child, to: dest, updateParent: false)
                    child = dest
                }
                let f = try file(child)
                var patch = SettingsPatch()
                patch.parent = .some(newParent)
                try patch.write(to: child, global: global, tx)
                for (name, value) in f.assignments where SettingName.isStorageBackend(name) && !value.isEmpty {
                    let image = StorageBackend(value).path(home: child, environment: env)
                    if let b = try? QemuImg.backing(of: image, environment: env), let to = imageMap[b.path] {
                        try tx.rebase(image, onto: to, current: b)
                    }
                }
                if let newParent { try relink.updateChildList(in: newParent, remove: nil, add: child) }
            }
        }

        // MARK: -c

        mutating func intoChildren() throws {
            let locks = LockSet(global: global, console: context.console)
            let own = try file(home)
            let top = own.parent.flatMap { VMHome.isHome($0, global: global) ? $0 : nil }
            let tx = Transaction(anchor: top ?? home.deletingLastPathComponent, environment: env)
            let mover = TreeMover(global: global, locks: locks, tx: tx, environment: env)
            // A VM made from a cached image may hand it on: who rests on it changes (vmimage(1), CACHE).
            let users = ImageUserChanges(global: global, environment: env)
            try tx.run(holding: locks, mover: mover, users: users) {
                try lockTree(locks)
                if let top { try locks.lock(top, allowRunning: true) }
                let children = try ChildList.read(home: home, global: global).children.filter { VMHome.isHome($0, global: global) }
                guard !children.isEmpty else { throw VMToolsError(.failure, home, "has no children to merge into") }
                if children.count > 1 {
                    safe = true  // the parent's disks are needed once per child
                    if top == nil {
                        context.console.progress("\(home) has \(children.count) children; each becomes a separate VM without parent, with its own full disks.")
                        guard try prompter.confirm("Merge '\(home)' into each of its children") else {
                            throw VMToolsError(.failure, home, "cancelled by the user")
                        }
                    }
                }
                let vm = try resolver.loadVM(home: home, global: global)
                try HostPathPolicy.require(vm, global: global, environment: env)
                let childVMs = try children.map { try resolver.loadVM(home: $0, global: global) }
                for v in [vm] + childVMs {
                    try refuseSnapshots(v, "merging into the children cannot keep (vmmerge(1) SNAPSHOTS)")
                }
                noteNoAutoSnapshot([vm] + childVMs)
                var moved: [String] = []
                for child in children {
                    let childFile = try file(child)
                    var doc = SettingsDocument(rewriting: childFile, comment: "Merged with '\(home)'",
                                               name: childFile.value(SettingKey.name) ?? child.lastPathComponent)
                    doc.parent = top
                    for t in own.templates where !doc.templates.contains(t) { doc.templates.append(t) }
                    // The child keeps its values; the merged VM's own fill the gaps.
                    for (name, value) in own.assignments where name != SettingKey.name && !doc.entries.contains(where: { $0.name == name }) {
                        doc.entries.append(.init(name, value))
                    }
                    for i in doc.entries.indices where SettingName.isStorageBackend(doc.entries[i].name) && !doc.entries[i].value.isEmpty {
                        let name = doc.entries[i].name
                        let b = StorageBackend(doc.entries[i].value)
                        guard !b.isRemote else { continue }
                        let image = b.path(home: child, environment: env)
                        let mine = StorageBackend(vm.settings.value(name)).path(home: home, environment: env)
                        if FileSystem.isRegularFile(image), let backing = try QemuImg.backing(of: image, environment: env),
                           backing.path == mine, image.deletingLastPathComponent == child {
                            // The overlay takes in the merged VM's layer.
                            let merged = try commit(image, into: backing, tx)
                            try tx.moveAside(image)
                            if merged == mine { try tx.rename(mine, to: image) } else { try tx.rename(merged, to: image) }
                        } else if image.deletingLastPathComponent == home && FileSystem.isRegularFile(image) {
                            // A disk of the merged VM itself (a -s fork's, a CD-ROM): each child gets a copy.
                            let dest = FileSystem.newPath(in: child, base: image.lastPathComponent)
                            try tx.record(.remove(dest))
                            try SparseCopy.copy(image, to: dest)
                            doc.entries[i].value = (b.prefix.map { $0 + ":" } ?? "") + dest
                        }
                    }
                    try tx.writeFile(Array(try doc.render().utf8), to: global.settingsPath(in: child))
                    try users.made(child)
                    try mergeFirmwareState(from: home, into: child, replace: false, tx)
                    moved.append(child)
                }
                let relink = Relinker(global: global, tx: tx, environment: env)
                if let top { try relink.updateChildList(in: top, remove: home, add: nil) }
                // Children inside the merged VM's home move up next to it (or into the top).
                for child in moved {
                    var at = child
                    if FileSystem.isWithin(child, home) {
                        let dir = top ?? home.deletingLastPathComponent
                        at = FileSystem.newPath(in: dir, base: child.lastPathComponent) { !FileSystem.exists($0) }
                        try mover.move(child, to: at, updateParent: false)
                    }
                    if let top { try relink.updateChildList(in: top, remove: nil, add: at) }
                }
                users.willRemove(home)
                try tx.moveAside(home)
            }
        }
    }
}
