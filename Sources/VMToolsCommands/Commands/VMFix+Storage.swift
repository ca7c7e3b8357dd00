import VMToolsCore
import VMToolsLaunch

/// `vmfix -s` on storage paths and backing files, and `vmfix -H`
/// (vmfix(1), vm.settings(5) HOST PATHS).
extension VMFixCommand.Fixer {
    // MARK: -s

    mutating func checkStorage(_ home: String, _ file: VMSettingsFile, _ tx: Transaction) throws {
        var fixed: [String: String] = [:]
        for (name, value) in file.assignments where SettingName.isStorageBackend(name) && !value.isEmpty {
            try Interrupt.check()
            let b = StorageBackend(value)
            guard !b.isRemote, !b.location.isEmpty else { continue }
            var image = b.path(home: home, environment: environment)
            if !FileSystem.isReadable(image) {
                issue("\(home): \(name): the image \(image) is missing")
                let local = home.appendingPathComponent(image.lastPathComponent)
                guard !checkOnly, FileSystem.isReadable(local) else { continue }
                fixed[name] = (b.prefix.map { $0 + ":" } ?? "") + local
                console.solved("\(home): \(name) now \(local)")
                image = local
            }
            guard let backing = try? QemuImg.backing(of: image, environment: environment),
                  !FileSystem.isReadable(backing.path) else { continue }
            issue("\(home): the backing file \(backing.path) of \(image) is missing")
            guard !checkOnly, let parent = file.parent else { continue }
            let candidate = parent.appendingPathComponent(backing.path.lastPathComponent)
            guard FileSystem.isReadable(candidate) else { continue }
            try tx.rebase(image, onto: candidate, current: backing)
            console.solved("\(image): backing file now \(candidate)")
        }
        guard !fixed.isEmpty else { return }
        var patch = SettingsPatch()
        patch.values = fixed
        try patch.write(to: home, global: global, tx)
        console.info("\(home): settings updated")
    }

    /// A VM resting on a cached image is among its users (vmimage(1),
    /// CACHE); a plain `mv` of its home left the old path listed instead.
    /// Read only for a VM whose own settings record `vm_image_digest`.
    mutating func checkImageUser(_ home: String, _ file: VMSettingsFile) throws {
        guard let value = file.value(SettingKey.imageDigest), let digest = ImageDigest(parsing: value) else { return }
        // Under -n a moved disk keeps its old path: look where the check above finds it.
        let moved = file.assignments.filter { SettingName.isStorageBackend($0.name) && !$0.value.isEmpty }.map { a in
            home.appendingPathComponent(StorageBackend(a.value).location.lastPathComponent)
        }.filter(FileSystem.isRegularFile)
        guard let base = ImageCache.base(of: home, digest: digest, global: global, environment: environment)
            ?? ImageCache.base(among: moved, digest: digest) else { return }
        let cache = ImageCache(directory: base.deletingLastPathComponent)
        let users = try cache.users(of: digest)
        if !users.contains(home) {
            issue("\(home): missing from the users of the cached image \(base)")
            if !checkOnly {
                try cache.addUser(home, of: digest)
                console.solved("\(base): lists \(home) as a user again")
            }
        }
        for gone in users where gone != home && !VMHome.isHome(gone, global: global) {
            issue("\(base): lists the missing user \(gone)")
            if !checkOnly {
                try cache.removeUser(gone, of: digest)
                console.solved("\(base): user \(gone) unregistered")
            }
        }
    }

    // MARK: -H

    /// Prints the host paths from outside its tree each of the VM's
    /// settings files hands to the guest, and accepts them (vm.settings(5), HOST PATHS).
    mutating func acceptHostPaths(_ home: String) {
        do {
            let open = try HostPathPolicy.accept(home: home, global: global, environment: environment, dryRun: checkOnly)
            for group in open {
                let raw = group.paths.contains(where: \.isRaw), paths = group.paths.contains { !$0.isRaw }
                issue("\(group.file): " + [paths ? "hands the guest host paths outside the VM's tree" : nil, raw ? "passes QEMU raw syntax" : nil]
                    .compactMap { $0 }.joined(separator: " and ") + ":")
                console.items(group.paths.map { p in
                    p.isRaw ? "\(p.setting)=\(p.path) (raw QEMU syntax: it can open host files and run host commands), from \(p.provenance)"
                        : "\(p.setting)=\(p.path)" + (p.via.map { " (the \($0))" } ?? "") + ", \(p.access.rawValue), from \(p.provenance)"
                })
                if !checkOnly { console.solved("\(group.file): these \(raw ? "host paths and raw QEMU values" : "host paths") are accepted") }
            }
        } catch let e as VMToolsError {
            failed(e)
        } catch {}
    }
}
