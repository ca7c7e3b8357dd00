/// What `vmup` and `vmcreate` take from their shared options (settings.md §2.3).
struct StartOptions {
    var commandLine = CommandLineSettings()
    /// `-c`/`-C` and `-d`/`-D` images, in order, placed into free slots once
    /// the VM's own settings are known.
    var disks: [String] = []
    var cdroms: [String] = []
    var dryRun = false

    init(_ args: ParsedArguments, cwd: String, environment: [String: String]) throws {
        if args.has("r") && args.has("s") {
            throw VMToolsError.usage("-r (read-only) and -s (snapshot) cannot be combined")
        }
        dryRun = args.has("n")
        for o in args.occurrences {
            switch o.letter {
            case "b": commandLine.set("vm_boot_menu", "yes", flag: "-b")
            case "i": commandLine.set("vm_qemu_daemonize", "no", flag: "-i")
            case "r": commandLine.set("vm_storage_rwmode", "ro", flag: "-r")
            case "s": commandLine.set("vm_storage_rwmode", "snap", flag: "-s")
            case "z": commandLine.set("vm_qemu_compress", "yes", flag: "-z")
            case "y": commandLine.override("cfg_ui_assumeyes", "yes", flag: "-y")
            case "o": try commandLine.parseOverride(o.value ?? "")
            case "t": try commandLine.addTemplate(o.value ?? "")
            case "c", "C":
                disks.append(try Self.canonicalStorage(o.value ?? "", cwd: cwd, environment: environment))
                if o.letter == "C" { commandLine.set("vm_boot_order", "c", flag: "-C") }
            case "d", "D":
                cdroms.append(try Self.canonicalStorage(o.value ?? "", cwd: cwd, environment: environment))
                if o.letter == "D" { commandLine.set("vm_boot_order", "d", flag: "-D") }
            default: break
            }
        }
    }

    /// `[prefix]path` with the path made absolute (URLs kept as typed).
    static func canonicalStorage(_ value: String, cwd: String, environment: [String: String]) throws -> String {
        let b = StorageBackend(value)
        if b.isRemote { return value }
        let path = try FileSystem.canonicalize(b.path(home: cwd, environment: environment), cwd: cwd)
        return (b.prefix.map { $0 + ":" } ?? "") + path
    }

    /// Puts the queued images into free slots (vmup(1), -c and -d): a slot is
    /// free when it has no backend or is not enabled, and no createsize asks
    /// for a new disk there. Returns the settings set.
    @discardableResult
    func placeImages(into settings: inout SettingsTable) throws -> [SettingsDocument.Entry] {
        var placed: [SettingsDocument.Entry] = []
        for (kind, images) in [("hdd", disks), ("cdrom", cdroms)] {
            var used: Set<Int> = []
            for image in images {
                // Slots are unbounded; whether the bus has room is the
                // storage modules' question (vm.settings(5)).
                guard let slot = (1...).first(where: { n in
                    !used.contains(n) && (settings.value("vm_storage_\(kind)\(n)_backend").isEmpty || !settings.isYes("vm_storage_\(kind)\(n)_enable"))
                        && !(kind == "hdd" && StorageHddModule.isRequestedByCreatesize(settings, n))
                }) else { continue }
                used.insert(slot)
                placed += [.init("vm_storage_\(kind)\(slot)_backend", image), .init("vm_storage_\(kind)\(slot)_enable", "yes")]
                if kind == "hdd" { placed.append(.init("vm_storage_hdd\(slot)_createsize", "")) }
            }
        }
        for e in placed { settings.set(e.name, e.value, .commandLine(e.name.hasPrefix("vm_storage_hdd") ? "-c" : "-d")) }
        return placed
    }
}
