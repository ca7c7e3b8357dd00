import VMToolsCore
import VMToolsLaunch

/// `vmup` and `vmcreate`'s shared flags (vmup(1)) read into `StartOptions`.
extension StartOptions {
    init(_ args: ParsedArguments, cwd: String, environment: [String: String]) throws {
        if args.has("r") && args.has("s") {
            throw VMToolsError.usage("-r (read-only) and -s (snapshot) cannot be combined")
        }
        self.init()
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
}
