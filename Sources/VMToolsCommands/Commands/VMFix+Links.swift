import VMToolsCore
import VMToolsLaunch

/// `vmfix -p` (vmfix(1)): parent and child links, repaired after a plain
/// `mv` of a VM or of the directory holding it.
extension VMFixCommand.Fixer {
    // MARK: -p

    /// Returns whether it changed the settings of `home`.
    mutating func checkLinks(_ home: String, _ file: VMSettingsFile, parentIsHome: Bool, _ locks: LockSet, _ tx: Transaction) throws -> Bool {
        let relink = Relinker(global: global, tx: tx, environment: environment)
        var changed = false
        // 1. Our parent must list us.
        if let parent = file.parent {
            if parentIsHome {
                let parentLock = try locks.lock(parent, allowRunning: true)
                if try !childList(parent, lock: parentLock).children.contains(home) {
                    issue("\(home): child link missing in its parent \(parent)")
                    if !checkOnly {
                        try relink.updateChildList(in: parent, remove: nil, add: home)
                        console.solved("\(parent): lists \(home) again")
                    }
                }
            } else if let (newParent, oldEntry) = try renamedParent(home, missing: parent) {
                // The parent's directory was renamed and this VM moved with it.
                issue("\(home): parent link invalid: \(parent) (now \(newParent))")
                if !checkOnly {
                    try locks.lock(newParent, allowRunning: true)
                    try relinkChild(home, to: newParent, from: parent, tx)
                    changed = true
                    try relink.updateChildList(in: newParent, remove: oldEntry, add: home)
                    console.solved("\(home): parent path updated to \(newParent)")
                }
            } else {
                issue("\(home): its parent \(parent) is missing")
                failed(VMToolsError(.failure, home, "cannot repair: its parent \(parent) is gone; run 'vmfix -rp' from a directory that holds the whole tree"))
            }
        }
        // 2. Every child listed must exist and point back.
        let list = try childList(home, lock: locks.lock(home))
        for child in list.children {
            try Interrupt.check()
            if VMHome.isHome(child, global: global) {
                let recorded = try readFile(child).parent
                guard recorded != home else { continue }
                issue("\(child): " + (recorded.map { "parent link invalid: \($0)" } ?? "parent link missing") + " (listed by \(home))")
                if !checkOnly {
                    try locks.lock(child, whatFor: "its settings must change")
                    try relinkChild(child, to: home, from: recorded, tx)
                    console.solved("\(child): parent path updated to \(home)")
                }
                continue
            }
            issue("\(home): lists the missing child \(child)")
            guard !checkOnly else { continue }
            let candidate = home.appendingPathComponent(child.lastPathComponent)
            if VMHome.isHome(candidate, global: global), !list.children.contains(candidate),
               try readFile(candidate).parent == child.deletingLastPathComponent {
                try locks.lock(candidate, whatFor: "its settings must change")
                try relink.updateChildList(in: home, remove: child, add: candidate)
                console.solved("\(home): child location updated to \(candidate)")
                try relinkChild(candidate, to: home, from: child.deletingLastPathComponent, tx)
                console.solved("\(candidate): parent path updated to \(home)")
            } else {
                try relink.updateChildList(in: home, remove: child, add: nil)
                console.solved("\(home): child \(child) unregistered")
            }
        }
        return changed
    }

    /// A missing parent P of `home`: when the directory holding `home` is
    /// a VM that lists `P/<basename of home>`, P was renamed to it.
    func renamedParent(_ home: String, missing parent: String) throws -> (String, String)? {
        let holder = home.deletingLastPathComponent
        guard VMHome.isHome(holder, global: global) else { return nil }
        let old = parent.appendingPathComponent(home.lastPathComponent)
        return try ChildList.read(home: holder, global: global).children.contains(old) ? (holder, old) : nil
    }

    /// Points a child at its (moved) parent: the parent line, and the
    /// disks that moved with the parent's directory (vmfix(1) -p): the
    /// child's own storage paths when it lived inside it, and the
    /// backing files of its overlays that still name the old place.
    func relinkChild(_ child: String, to parent: String, from old: String?, _ tx: Transaction) throws {
        var patch = SettingsPatch()
        patch.parent = .some(parent)
        let t = old.map { PathTranslation(from: $0, to: parent) }
        for (name, value) in try readFile(child).assignments where SettingName.isStorageBackend(name) && !value.isEmpty {
            let b = StorageBackend(value)
            guard !b.isRemote, !b.location.isEmpty else { continue }
            var image = b.path(home: child, environment: environment)
            if !FileSystem.isReadable(image), let t, t.applies(to: image), FileSystem.isReadable(t(image)) {
                image = t(image)
                if b.location.hasPrefix("/") { patch.values[name] = (b.prefix.map { $0 + ":" } ?? "") + image }
                console.solved("\(child): \(name) now \(image)")
            }
            guard FileSystem.isRegularFile(image), let backing = try? QemuImg.backing(of: image, environment: environment),
                  !FileSystem.isReadable(backing.path) else { continue }
            var moved = parent.appendingPathComponent(backing.path.lastPathComponent)
            if let t, t.applies(to: backing.path), FileSystem.isReadable(t(backing.path)) { moved = t(backing.path) }
            guard FileSystem.isReadable(moved) else { continue }
            try tx.rebase(image, onto: moved, current: backing)
            console.solved("\(image): backing file now \(moved)")
        }
        try patch.write(to: child, global: global, tx)
    }
}
