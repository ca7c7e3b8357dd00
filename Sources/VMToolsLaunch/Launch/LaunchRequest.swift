import VMToolsCore

/// What to start (Docs/ARCHITECTURE.md, "The launch pipeline"): a VM home, a
/// new home, or a bare image, with the command-line settings and the queued
/// `-c`/`-d` images of `options`.
package struct LaunchRequest {
    package enum Target: Equatable {
        case home(String)
        case newHome(String)
        /// A disk image, ISO, device or URL booted without a home; `name` is
        /// what the VM is called (the file name, or a URL's last component).
        case bare(name: String)
    }

    package var target: Target
    package var options: StartOptions

    /// `vmup OPERAND`: a VM home, or anything else QEMU can boot (vmup(1)).
    package static func start(_ operand: String, options: StartOptions, global: GlobalConfig, context: Context) throws -> LaunchRequest {
        let b = StorageBackend(operand)
        var location = operand
        if !b.isRemote {
            do {
                location = try FileSystem.canonicalize(b.path(home: context.cwd, environment: context.environment), cwd: context.cwd)
            } catch let e as VMToolsError where e.subject != nil && e.subject != operand {
                // The operand as typed (`invalid:disc.iso` is a file name, vmup(1)), then the part that is missing.
                throw VMToolsError(e.code, operand, "no such file or directory (\(e))")
            }
            if FileSystem.isDirectory(location) {
                try VMSettingsFile.refuseLink(global.settingsPath(in: location))
                guard VMHome.isHome(location, global: global) else {
                    throw VMToolsError(.failure, location, "not a VM home (no \(global.fileNames.settings)); create one with vmcreate")
                }
                return LaunchRequest(target: .home(location), options: options)
            }
            if CatalogImages.isLookup(b.location, path: location) {
                return try catalogBoot(operand, options: options, global: global, context: context)
            }
            guard FileSystem.exists(location) else { throw VMToolsError(.failure, operand, "no such file or directory") }
            // What QEMU or an import opens: a FIFO would block it for ever.
            if let problem = FileSystem.imageFileProblem(location) { throw VMToolsError(.failure, operand, problem) }
        }
        // Booted as for a new VM (vm.settings(5)): the image fills the first
        // disk or CD-ROM slot. The prefix stays, so that storage_cdrom refuses rw: and snap:.
        let backend = b.isRemote ? operand : (b.prefix.map { $0 + ":" } ?? "") + location
        let isISO = b.isRemote ? urlPath(b.location).lowercased().hasSuffix(".iso") : DiskImageKind.isISO(location)
        let bare = firstSlot(options, backend: backend, isISO: isISO, flag: "vmup FILE")
        // (For URLs the original names the VM after the last component as typed, query included.)
        let name = b.isRemote ? (b.location.split(separator: "/").last.map(String.init) ?? b.location) : location.lastPathComponent
        return LaunchRequest(target: .bare(name: name), options: bare)
    }

    /// `vmup NAME`, a catalog entry (vmup(1), IMAGES BY NAME): booted as
    /// its image would be, on an overlay in the run-time directory.
    static func catalogBoot(_ operand: String, options: StartOptions, global: GlobalConfig, context: Context) throws -> LaunchRequest {
        let image = try CatalogImages.resolve(operand, cdrom: nil, dryRun: options.dryRun, options: options, global: global, context: context)
        var bare = firstSlot(options, backend: operand, isISO: image.isISO, flag: "vmup NAME")
        bare.catalog.insert(image, at: 0)
        return LaunchRequest(target: .bare(name: image.entry.name), options: bare)
    }

    /// A bare boot's image in the first CD-ROM slot (booted from) or the first disk slot.
    static func firstSlot(_ options: StartOptions, backend: String, isISO: Bool, flag: String) -> StartOptions {
        var bare = options
        if isISO {
            bare.commandLine.set(SettingKey.cdrom(1).backend, backend, flag: flag)
            bare.commandLine.set(SettingKey.cdrom(1).enable, "yes", flag: flag)
            bare.commandLine.set(SettingKey.bootOrder, "d", flag: flag)
        } else {
            bare.commandLine.set(SettingKey.hdd(1).backend, backend, flag: flag)
            bare.commandLine.set(SettingKey.hdd(1).createsize, "", flag: flag)
            bare.commandLine.set(SettingKey.hdd(1).enable, "yes", flag: flag)
        }
        return bare
    }

    /// `vmcreate OPERAND`: a directory that does not hold a VM yet (vmcreate(1)).
    package static func create(_ operand: String, options: StartOptions, global: GlobalConfig, context: Context) throws -> LaunchRequest {
        var path = try FileSystem.canonicalize(operand, cwd: context.cwd)
        if path.lastPathComponent == global.fileNames.settings { path = path.deletingLastPathComponent }
        if VMHome.isHome(path, global: global) {
            throw VMToolsError(.failure, path, "already holds a virtual machine; delete it with vmrm first")
        }
        if FileSystem.exists(path), !FileSystem.isDirectory(path) { throw VMToolsError(.failure, path, "exists and is not a directory") }
        return LaunchRequest(target: .newHome(path), options: options)
    }

    /// The path part of a URL: what comes before `?`, `#` or `&`.
    static func urlPath(_ url: String) -> String {
        String(url.prefix { $0 != "?" && $0 != "#" && $0 != "&" })
    }
}
