import VMToolsCore

/// A catalog name given where a storage argument is taken: `-c`/`-C`,
/// `-d`/`-D`, a bare `vmup NAME` (vmcreate(1), vmup(1): IMAGES BY NAME).
package struct CatalogImage {
    /// As given, `[ro:|rw:|snap:]NAME`: what the options and the settings
    /// carry until the configuration replaces it with a file.
    package var value: String
    package var prefix: String?
    package var entry: ImageEntry
    /// The entry's URL for the architecture, as the entry names it (what
    /// `vm_image_url` records; a mirror only changes where it is fetched).
    package var url: String
    /// The verified image in the cache; nil only for `vmup -n` when the
    /// cache does not hold it yet (nothing is downloaded in a dry run).
    package var image: ImageCache.Image?

    var isISO: Bool { entry.kind == .iso }
}

/// Where catalog names become files (Docs/ARCHITECTURE.md, "The launch
/// pipeline"): the request looks the names up and has the image cached
/// (`resolve`); the configuration puts an overlay, a copy or the cached
/// file in their slots (`place`) and the entry's settings under the
/// command line (`applyEntry`).
package enum CatalogImages {
    /// The catalog name a storage value still holds: `StartOptions`
    /// keeps a name as typed, every path it makes absolute.
    package static func name(in value: String) -> String? {
        let b = StorageBackend(value)
        guard !b.isRemote, !b.location.hasPrefix("/"), ImageCatalog.isCandidateName(b.location) else { return nil }
        return b.location
    }

    /// Whether `location` (as typed, without its prefix) is looked up in
    /// the catalog: it could name an entry and no file or directory is at
    /// `path`, where it would be. An existing file always wins; a path
    /// (anything with a slash) costs no lookup.
    package static func isLookup(_ location: String, path: String) -> Bool {
        ImageCatalog.isCandidateName(location) && !FileSystem.lexists(path)
    }

    /// Looks up the catalog names among `options`' images and has each
    /// image in the cache (downloaded and verified unless it is there
    /// already). With `dryRun` nothing is downloaded: a NOTICE says what
    /// would be (vmup -n).
    package static func resolve(_ options: inout StartOptions, dryRun: Bool, global: GlobalConfig, context: Context) throws {
        for (values, cdrom) in [(options.disks, false), (options.cdroms, true)] {
            for value in values where name(in: value) != nil && !options.catalog.contains(where: { $0.value == value }) {
                options.catalog.append(try resolve(value, cdrom: cdrom, dryRun: dryRun, options: options, global: global, context: context))
            }
        }
    }

    /// One name; `cdrom` says what the argument expects (nil: a bare boot takes either).
    package static func resolve(_ value: String, cdrom: Bool?, dryRun: Bool, options: StartOptions, global: GlobalConfig,
                                context: Context) throws -> CatalogImage {
        let b = StorageBackend(value)
        let catalog = ImageCatalog(global)
        guard let entry = try catalog.entry(named: b.location) else {
            throw VMToolsError(.failure, value, "no such file or directory, and no image catalog entry has that name either (looked in \(catalog.directories.joined(separator: ", ")))")
        }
        switch (cdrom, entry.kind) {
        case (true?, .cloud):
            throw VMToolsError(.usage, value, "the catalog entry \(entry.name) is a disk image: give it with -c or -C")
        case (false?, .iso):
            throw VMToolsError(.usage, value, "the catalog entry \(entry.name) is an installer ISO: give it with -d or -D")
        default: break
        }
        let puller = try self.puller(options: options, global: global, context: context)
        guard let url = entry.urls[puller.architecture] else {
            throw VMToolsError(.failure, entry.name, "the catalog entry has no image for \(puller.architecture) (image_url_\(puller.architecture) in \(entry.file))")
        }
        var found = CatalogImage(value: value, prefix: b.prefix, entry: entry, url: url, image: nil)
        if dryRun {
            found.image = cached(entry, puller: puller)
            if found.image == nil { context.console.notice("would download \(entry.name) from \(puller.mirror.rewrite(url))") }
        } else {
            found.image = try puller.cachedOrPull(entry)
        }
        return found
    }

    /// What `cachedOrPull` finds without the network.
    static func cached(_ entry: ImageEntry, puller: ImagePuller) -> ImageCache.Image? {
        if let d = entry.digests[puller.architecture] { return puller.cache.image(d) }
        return puller.cache.newest(entry: entry.name)
    }

    /// The puller of this command: the cache of the user who runs it,
    /// `cfg_images_mirror`, `cfg_images_unverified`, the VM's architecture.
    static func puller(options: StartOptions, global: GlobalConfig, context: Context) throws -> ImagePuller {
        // cfg_* from -o are in the global settings already; vm_qemu_arch is not.
        func value(_ name: String) -> String { options.commandLine.value(name) ?? global.settings.value(name) }
        return ImagePuller(cache: ImageCache(environment: context.environment), mirror: try global.imageMirror(),
                           allowUnverified: global.settings.isYes(SettingKey.imagesUnverified),
                           architecture: value(SettingKey.qemuArch).isEmpty ? "x86_64" : value(SettingKey.qemuArch),
                           console: context.console, environment: context.environment)
    }

    /// A new VM (`directory` its home) or a bare boot (its run directory):
    /// a disk slot holding a name gets a thin qcow2 overlay on the cached
    /// image in `directory`, or a full copy with `cfg_images_overlay=no`,
    /// both made by the executor as the plan's first steps; a CD-ROM slot
    /// gets the cached ISO itself, read-only.
    package static func place(_ images: [CatalogImage], in c: inout Configuration, directory: String) throws {
        guard !images.isEmpty else { return }
        let overlay = try c.vm.imagesOverlay()
        for n in c.vm.hddSlots {
            let keys = SettingKey.hdd(n)
            guard let image = images.first(where: { $0.value == c.value(keys.backend) }) else { continue }
            let dest = FileSystem.newPath(in: directory, base: image.entry.name, suffix: ".qcow2") { p in
                !FileSystem.lexists(p) && !c.conversions.contains { $0.destination == p }
            }
            var step: LaunchPlan.Conversion
            if let cached = image.image {
                // Verified by digest, but its header could still name host files.
                let format = try ImportedImage.check(cached.path, member: cached.path.lastPathComponent, subject: image.value)
                step = .init(source: cached.path, format: format, subject: image.value, destination: dest)
            } else {
                step = .init(source: image.url, format: "qcow2", subject: image.value, destination: dest)
            }
            if overlay {
                step.overlay = true
                step.size = try growth(of: c.vm.hdd(n), base: image.image?.path)
            } else {
                step.compress = c.vm.qemuCompress
                step.preallocation = try c.vm.hdd(n).preallocation().rawValue
            }
            c.conversions.append(step)
            replace(keys.backend, with: (image.prefix.map { $0 + ":" } ?? "") + dest, in: &c)
        }
        for n in c.vm.cdromSlots {
            let keys = SettingKey.cdrom(n)
            guard let image = images.first(where: { $0.value == c.value(keys.backend) }) else { continue }
            replace(keys.backend, with: (image.prefix.map { $0 + ":" } ?? "") + cachedPath(image), in: &c)
        }
    }

    /// `vmup -c NAME HOME`: an existing VM gets the cached image itself for
    /// this start, in snapshot mode unless `ro:` says read-only; nobody
    /// writes to a cached image (`rw:` is refused).
    package static func place(_ images: [CatalogImage], into settings: inout SettingsTable) throws {
        guard !images.isEmpty else { return }
        let vm = VMSettings(settings)
        for n in vm.hddSlots {
            let keys = SettingKey.hdd(n)
            guard let image = images.first(where: { $0.value == settings.value(keys.backend) }) else { continue }
            guard image.prefix != "rw" else {
                throw VMToolsError(.usage, image.value, "a cached image is shared and never written; use snap: or ro:, or make a VM with its own overlay: vmcreate -c \(image.entry.name) DIR")
            }
            settings.set(keys.backend, (image.prefix ?? "snap") + ":" + cachedPath(image), .commandLine("-c"))
        }
        for n in vm.cdromSlots {
            let keys = SettingKey.cdrom(n)
            guard let image = images.first(where: { $0.value == settings.value(keys.backend) }) else { continue }
            settings.set(keys.backend, (image.prefix.map { $0 + ":" } ?? "") + cachedPath(image), .commandLine("-d"))
        }
    }

    /// The entry's `vm_*` settings, above the defaults and templates and
    /// below the command line (vm.settings(5), IMAGES BY NAME), cloud-init
    /// for a cloud image, and the record of where the VM came from.
    package static func applyEntry(_ image: CatalogImage, to c: inout Configuration, commandLine: CommandLineSettings) {
        let by = "image \(image.entry.name)"
        func set(_ name: String, _ value: String) {
            guard commandLine.value(name) == nil else { return }
            c.recorded.removeAll { $0.name == name }
            c.recorded.append(.init(name, value))
            c.settings.set(name, value, .derived(by))
        }
        for s in image.entry.settings where s.name.hasPrefix("vm_") && ![SettingKey.home, SettingKey.name].contains(s.name) { set(s.name, s.value) }
        if image.entry.kind == .cloud { set(SettingKey.cloudInitEnable, "yes") }
        set(SettingKey.imageName, image.entry.name)
        set(SettingKey.imageURL, image.url)
        if let d = image.image?.digest { set(SettingKey.imageDigest, d.description) }
    }

    /// The images a new VM's disks rest on, for the cache's user lists: the
    /// overlays' bases. A copy rests on nothing; an installer ISO is written
    /// commented out (vmcreate(1)), so the VM does not keep it.
    package static func bases(_ images: [CatalogImage], of c: Configuration) -> [ImageCache.Image] {
        images.compactMap(\.image).filter { i in c.conversions.contains { $0.overlay && $0.source == i.path } }
    }

    /// The cached file, or for a dry run without it where it would be.
    static func cachedPath(_ image: CatalogImage) -> String {
        image.image?.path ?? image.url
    }

    /// `vm_storage_hddN_size` as the overlay's size, when it is larger
    /// than the image (an overlay is never smaller than its base).
    static func growth(of disk: VMSettings.Drive, base: String?) throws -> String? {
        guard let want = try disk.size(), let bytes = want.bytes else { return nil }
        if let base, let have = ImageFormat.virtualSize(base), have >= bytes { return nil }
        return want.text
    }

    /// Replaces a slot's value where the settings and the new file's list hold it.
    static func replace(_ name: String, with value: String, in c: inout Configuration) {
        let provenance = c.settings.provenance(name) ?? .derived("the image catalog")
        c.settings.set(name, value, provenance)
        if let i = c.recorded.firstIndex(where: { $0.name == name }) { c.recorded[i].value = value }
    }
}
