import VMToolsCore
import VMToolsLaunch

/// Options two commands share: vmup/vmcreate have one parser, and so do vmcp/vmfork.
enum SharedOptions {
    static let start: [OptionSpec] = [
        OptionSpec("b", "show the BIOS boot menu (vm_boot_menu=yes)"),
        OptionSpec("C", "storage", "attach a hard disk and boot from it"),
        OptionSpec("c", "storage", "attach a hard disk (into the next free slot)"),
        OptionSpec("D", "storage", "attach a CD-ROM image and boot from it"),
        OptionSpec("d", "storage", "attach a CD-ROM image (into the next free slot)"),
        OptionSpec("i", "interactive: QEMU in the foreground, monitor on the terminal"),
        OptionSpec("n", "do everything but start QEMU"),
        OptionSpec("o", "setting=value", "override a setting (repeatable, last wins)"),
        OptionSpec("r", "open every disk read-only (vm_storage_rwmode=ro)"),
        OptionSpec("s", "snapshot mode: disk writes are discarded (vm_storage_rwmode=snap)"),
        OptionSpec("t", "template", "apply a template (repeatable)"),
        OptionSpec("y", "assume yes: never prompt, take every default"),
        OptionSpec("z", "compress images produced by conversion"),
    ]

    static let clone: [OptionSpec] = [
        OptionSpec("a", "autonomous copy: no parent, settings and backing chains flattened"),
        OptionSpec("c", "copy: the new VM has the same parent as the source"),
        OptionSpec("f", "fork: the new VM is a child of the source"),
        OptionSpec("k", "keep unique properties (MAC addresses, instance-id, UUID)"),
        OptionSpec("M", "module", "remove a clone module for this run"),
        OptionSpec("m", "module", "add a clone module for this run"),
        OptionSpec("n", "with -a: do not lock or modify the source"),
        OptionSpec("o", "setting=value", "set a setting in the new VMs (repeatable)"),
        OptionSpec("R", "child recursion: copy every descendant too"),
        OptionSpec("r", "directory recursion: copy every VM below the source"),
        OptionSpec("s", "snapshot mode for the resulting VMs"),
        OptionSpec("y", "assume yes: never prompt"),
        OptionSpec("z", "compress copied images"),
    ]
}

extension SharedOptions {
    /// `-o setting=value` and `-y`, for the commands whose spec has them, in
    /// command-line order: both are overrides, so the last one wins.
    static func settings(_ args: ParsedArguments) throws -> CommandLineSettings {
        var settings = CommandLineSettings()
        for o in args.occurrences(of: "oy".filter(args.isKnown)) {
            if o.letter == "o" { try settings.parseOverride(o.value ?? "") }
            if o.letter == "y" { settings.override(SettingKey.assumeYes, "yes", flag: "-y") }
        }
        return settings
    }
}

extension CloneOptions {
    /// vmcp's and vmfork's options; `defaultMode` is the command's own
    /// (copy or fork) when none of -a -c -f is given.
    init(_ args: ParsedArguments, defaultMode: CloneJob.Action) throws {
        let autonomous = args.has("a"), copy = args.has("c"), fork = args.has("f")
        if [autonomous, copy, fork].filter({ $0 }).count > 1 {
            throw VMToolsError.usage("-a, -c and -f cannot be combined")
        }
        if args.has("n") && !autonomous { throw VMToolsError.usage("-n goes with -a only") }
        self.init(mode: autonomous ? .autonomous : copy ? .copy : fork ? .fork : defaultMode)
        noLock = args.has("n")
        settings = try SharedOptions.settings(args)
        childRecursion = args.has("R")
        directoryRecursion = args.has("r")
        keepUnique = args.has("k")
        snapshot = args.has("s")
        compress = args.has("z")
        addModules = args.values("m")
        removeModules = args.values("M")
    }
}

extension Cloner.Event {
    /// How vmcp and vmfork tell each pair's outcome.
    func show(on console: Console) {
        switch self {
        case let .made(source, home, mode):
            console.info(mode == .fork ? "\(home): forked from '\(source)'" : "\(source): copied to '\(home)'")
        case let .failed(error):
            console.error(error)
        }
    }
}
