import VMToolsCore

/// The users lists of cached images (vmimage(1), CACHE) a tree operation
/// changes: vmcp lists a copy, vmmv moves an entry, vmrm drops one. The
/// lists live in the cache, outside every VM's tree and its transaction,
/// so the order keeps them safe instead of the journal: a home is listed
/// before the VM exists there and unlisted only once it is gone (after
/// the commit). A crash leaves a stale line at worst, which blocks
/// nothing and `vmimage -c` drops.
///
/// Cheap for other VMs: only one whose own `vm.settings` records
/// `vm_image_digest` has its disks' headers read.
package final class ImageUserChanges {
    let global: GlobalConfig
    let environment: [String: String]
    private struct Entry {
        var cache: ImageCache
        var digest: ImageDigest
        /// Listed before the commit: unlisted again on rollback.
        var added: String?
        /// Unlisted after the commit.
        var removed: String?
    }
    private var entries: [Entry] = []

    package init(global: GlobalConfig, environment: [String: String]) {
        self.global = global
        self.environment = environment
    }

    /// The cache and digest of the image `home` rests on: the cache its
    /// disk's backing file is in, or, when that cannot be read, the user's
    /// cache if it lists `home`. Nil for a VM not made from a cached image.
    package func image(of home: String) -> (cache: ImageCache, digest: ImageDigest)? {
        guard let digest = ImageCache.recordedDigest(home: home, global: global) else { return nil }
        if let base = ImageCache.base(of: home, digest: digest, global: global, environment: environment) {
            return (ImageCache(directory: base.deletingLastPathComponent), digest)
        }
        let cache = ImageCache(environment: environment)
        return ((try? cache.users(of: digest))?.contains(home) ?? false) ? (cache, digest) : nil
    }

    /// The VM at `old` is about to become `new` (a rename): `new` is listed now.
    package func willMove(_ old: String, to new: String) throws {
        guard let (cache, digest) = image(of: old) else { return }
        let listed = try cache.users(of: digest).contains(new)
        try cache.addUser(new, of: digest)
        entries.append(Entry(cache: cache, digest: digest, added: listed ? nil : new, removed: old))
    }

    /// A new or changed VM at `home` (a copy, a merge; its settings
    /// written): listed if its disks rest on a cached image (an
    /// autonomous copy's do not).
    package func made(_ home: String) throws {
        guard let digest = ImageCache.recordedDigest(home: home, global: global),
              let base = ImageCache.base(of: home, digest: digest, global: global, environment: environment) else { return }
        let cache = ImageCache(directory: base.deletingLastPathComponent)
        // One listed already stays listed whatever happens.
        guard try !cache.users(of: digest).contains(home) else { return }
        try cache.addUser(home, of: digest)
        entries.append(Entry(cache: cache, digest: digest, added: home, removed: nil))
    }

    /// The VM at `home` is about to be deleted: unlisted after the commit.
    package func willRemove(_ home: String) {
        guard let (cache, digest) = image(of: home) else { return }
        entries.append(Entry(cache: cache, digest: digest, added: nil, removed: home))
    }

    /// After the commit. A failure leaves a stale line, which is harmless:
    /// a NOTICE says how to drop it.
    package func committed(console: Console?) {
        for e in entries {
            guard let home = e.removed else { continue }
            do {
                try e.cache.removeUser(home, of: e.digest)
            } catch let error as VMToolsError {
                console?.notice("\(error.description); 'vmimage -c' drops the stale user \(home) of \(e.digest)")
            } catch {}
        }
        entries.removeAll()
    }

    /// After a rollback: what was listed for the new homes goes again.
    package func rolledBack() {
        for e in entries.reversed() {
            if let home = e.added { try? e.cache.removeUser(home, of: e.digest) }
        }
        entries.removeAll()
    }
}
