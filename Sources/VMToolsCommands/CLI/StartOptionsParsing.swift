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
            case "b": commandLine.set(SettingKey.bootMenu, "yes", flag: "-b")
            case "i": commandLine.set(SettingKey.qemuDaemonize, "no", flag: "-i")
            case "r": commandLine.set(SettingKey.rwMode, "ro", flag: "-r")
            case "s": commandLine.set(SettingKey.rwMode, "snap", flag: "-s")
            case "z": commandLine.set(SettingKey.qemuCompress, "yes", flag: "-z")
            case "y": commandLine.override(SettingKey.assumeYes, "yes", flag: "-y")
            case "o": try commandLine.parseOverride(o.value ?? "")
            case "t": try commandLine.addTemplate(o.value ?? "")
            case "c", "C":
                disks.append(try Self.canonicalStorage(o.value ?? "", cwd: cwd, environment: environment))
                if o.letter == "C" { commandLine.set(SettingKey.bootOrder, "c", flag: "-C") }
            case "d", "D":
                cdroms.append(try Self.canonicalStorage(o.value ?? "", cwd: cwd, environment: environment))
                if o.letter == "D" { commandLine.set(SettingKey.bootOrder, "d", flag: "-D") }
            default: break
            }
        }
    }
}
