import VMToolsCore

/// The one place where a start's settings are put together (vmtools(7),
/// INHERITANCE): built-in defaults and configuration files, the VM's file
/// or the configure modules, templates, a catalog entry's settings
/// (vm.settings(5), IMAGES BY NAME), the command line, then the queued
/// `-c`/`-d` images in free slots, catalog names made files.
package enum LaunchConfigurator {
    /// An existing home: its file and templates with the command line on top
    /// (`SettingsResolver.loadVM`), then the queued images.
    package static func existing(home: String, options: StartOptions, global: GlobalConfig, resolver: SettingsResolver) throws -> ResolvedVM {
        var vm = try resolver.loadVM(home: home, global: global)
        try placeImages(options, into: &vm.settings)
        try CatalogImages.place(options.catalog, into: &vm.settings)
        return vm
    }

    /// A new home or a bare image: templates, the command line, `-c`/`-d`
    /// images and the configure modules, recording what a new file will hold.
    /// A catalog image's overlay goes into the home, or for a bare boot
    /// into `runDirectory`.
    package static func new(home: String?, name: String?, options: StartOptions, global: GlobalConfig, resolver: SettingsResolver,
                    context: Context, runDirectory: String? = nil) throws -> Configuration {
        var table = global.settings
        if let home {
            table.set(SettingKey.home, home, .derived("the VM's directory"))
            table.set(SettingKey.name, home.lastPathComponent, .derived("the directory name"))
        } else if let name {
            table.set(SettingKey.name, name, .derived("the image name"))
        }
        let prompter = Prompter(assumeYes: VMSettings(table).assumeYes || options.commandLine.value(SettingKey.assumeYes) == "yes",
                                console: context.console, stdin: context.stdin)
        var conf = Configuration(settings: table, templates: options.commandLine.templates, home: home, global: global,
                                 environment: context.environment, prompter: prompter, console: context.console)
        for e in options.commandLine.entries {
            conf.settings.set(e.name, e.value, .commandLine(e.flag))
            conf.recorded.append(.init(e.name, e.value))
        }
        let before = conf.settings
        for e in try placeImages(options, into: &conf.settings) where !e.name.hasSuffix("_createsize") && before.value(e.name) != e.value {
            conf.recorded.append(e)
        }
        for m in try ModuleRegistry.configureModules(.configureTemplates, settings: conf.settings, paths: global.paths, console: context.console) {
            try m.configure(&conf)
        }
        conf.templates = try resolver.applyTemplates(conf.templates, to: &conf.settings, global: global)
        // A catalog entry's settings beat the templates, not the command line.
        if let image = options.catalog.first { CatalogImages.applyEntry(image, to: &conf, commandLine: options.commandLine) }
        // Templates a module chose must not override the command line.
        for e in options.commandLine.entries { conf.settings.set(e.name, e.value, .commandLine(e.flag)) }
        if let directory = home ?? runDirectory { try CatalogImages.place(options.catalog, in: &conf, directory: directory) }
        for m in try ModuleRegistry.configureModules(.configureSettings, settings: conf.settings, paths: global.paths, console: context.console) {
            try m.configure(&conf)
        }
        return conf
    }

    /// Puts the queued images into free slots (vmup(1), -c and -d): a slot is
    /// free when it has no backend or is not enabled, and no createsize asks
    /// for a new disk there. Returns the settings set.
    @discardableResult
    static func placeImages(_ options: StartOptions, into settings: inout SettingsTable) throws -> [SettingsDocument.Entry] {
        var placed: [SettingsDocument.Entry] = []
        for (kind, images) in [(SettingKey.DriveKind.hdd, options.disks), (.cdrom, options.cdroms)] {
            var used: Set<Int> = []
            for image in images {
                // Slots are unbounded; whether the bus has room is the
                // storage modules' question (vm.settings(5)).
                let vm = VMSettings(settings)
                guard let slot = (1...).first(where: { n in
                    let drive = vm.drive(kind, n)
                    return !used.contains(n) && (drive.backend.isEmpty || !drive.enabled) && !(kind == .hdd && drive.isRequestedByCreatesize)
                }) else { continue }
                used.insert(slot)
                let keys = SettingKey.drive(kind, slot)
                placed += [.init(keys.backend, image), .init(keys.enable, "yes")]
                if kind == .hdd { placed.append(.init(keys.createsize, "")) }
            }
        }
        for e in placed { settings.set(e.name, e.value, .commandLine(e.name.hasPrefix(SettingKey.hddPrefix) ? "-c" : "-d")) }
        return placed
    }
}
