import VMToolsCore

/// `storage_hdd`: hard disks on the primary IDE channel (vmtools(7) CUSTOMIZATION;
/// room for hdd1 and hdd2), or any number on virtio
/// (`vm_storage_hdd_interface=virtio`), with the fixes QEMU 7.2 needs:
/// explicit formats, `read-only=on` on a bus that supports it (virtio; IDE disks cannot be read-only), VVFAT through
/// `-drive`, and a `createsize` that never destroys an existing disk. A disk
/// to create goes into the plan; `LaunchExecutor` makes it.
public enum StorageHddModule: BuildCmdModule {
    public static let name = "storage_hdd"

    enum Mode: String { case rw, snap, ro }

    public static func build(_ c: inout QemuCommand) throws {
        let ceiling = Mode(rawValue: c.value("vm_storage_rwmode"))
        guard let ceiling else { throw c.invalid("vm_storage_rwmode", "expected rw, snap or ro") }
        let bus = c.value("vm_storage_hdd_interface")
        guard ["ide", "virtio"].contains(bus) else { throw c.invalid("vm_storage_hdd_interface", "expected ide or virtio") }
        for n in numbers(of: "vm_storage_hdd", in: c.settings) {
            let key = "vm_storage_hdd\(n)"
            let size = c.value("\(key)_createsize")
            var value = c.value("\(key)_backend")
            if !c.isYes("\(key)_enable") {
                // A createsize alone asks for a new disk (vm.settings(5)); beside
                // a backend the user disabled, it is ignored, but not silently.
                // 0 is vmcreate's answer for "no disk".
                guard !size.isEmpty, size != "0" else { continue }
                if !value.isEmpty || isExplicitNo(c, "\(key)_enable") {
                    c.notices.append("\(key)_createsize=\(size) ignored: the disk is disabled (\(key)_enable=\(c.value("\(key)_enable")))")
                    continue
                }
            }
            if !size.isEmpty, !isSize(size, units: "MGT") { throw c.invalid("\(key)_createsize", "expected a size such as 512M, 40G or 1T") }
            var defaulted = false
            if value.isEmpty {
                guard !size.isEmpty else { throw c.invalid("\(key)_backend", "disk \(n) is enabled but has no backend file") }
                guard c.home != nil else { throw c.invalid("\(key)_createsize", "a new disk needs a VM home") }
                value = "hdd\(n).qcow2"
                defaulted = true
            }
            if bus == "ide", n > 2 {
                throw c.invalid("vm_storage_hdd_interface", "IDE has room for two hard disks (hdd1, hdd2); \(key) needs vm_storage_hdd_interface=virtio")
            }
            let b = StorageBackend(value)
            guard !b.location.isEmpty else { throw c.invalid("\(key)_backend", "empty path") }
            var mode: Mode?
            switch b.prefix {
            case "rw": mode = ceiling
            case "snap": mode = ceiling == .ro ? .ro : .snap
            case "ro": mode = .ro
            default: mode = nil
            }
            let index = n - 1
            let setting = c.value("\(key)_backend").isEmpty ? "\(key)_createsize" : "\(key)_backend"
            if b.isRemote {
                if !size.isEmpty { throw c.invalid("\(key)_createsize", "a remote disk cannot be created") }
                let lower = b.location.lowercased()
                let m = mode ?? (lower.hasPrefix("iscsi://") || lower.hasPrefix("nbd:") ? ceiling : (ceiling == .ro ? .ro : .snap))
                try emit(&c, file: b.location, format: nil, index: index, mode: m, bus: bus)
                continue
            }
            let path = try FileSystem.canonicalize(b.path(home: c.home, environment: c.environment), cwd: FileSystem.currentDirectory())
            if FileSystem.isDirectory(path) {
                if !size.isEmpty { throw c.invalid("\(key)_createsize", "a shared directory cannot be created") }
                let m = mode ?? .ro
                if m == .snap { throw c.invalid("\(key)_backend", "a shared directory cannot be used in snapshot mode; use rw: or ro:") }
                let file = m == .rw ? "fat:rw:\(path)" : "fat:\(path)"
                c.append("-drive", "file=\(qemuEscape(file)),format=raw,if=\(bus),index=\(index),media=disk" + (m == .rw ? "" : ",snapshot=on"))
                continue
            }
            var m = mode
            if (m ?? ceiling) == .rw, ceiling == .rw, !c.children.isEmpty {
                throw VMToolsError(.failure, c.home ?? path, "has children (\(c.children.joined(separator: ", "))); start it with -s (snapshot) or -r (read-only) so their disks stay valid")
            }
            // A missing disk with a createsize is the executor's to make (Docs/vmup.1).
            let creating = !size.isEmpty && !FileSystem.exists(path)
            if creating {
                guard (m ?? ceiling) == .rw, ceiling == .rw else { throw c.invalid("\(key)_createsize", "a disk cannot be created in snapshot or read-only mode") }
                c.plan.disksToCreate.append(.init(path: path, size: size, position: c.notices.count))
            } else if !size.isEmpty {
                // The original deleted and recreated the disk here: never.
                c.notices.append("\(key)_createsize=\(size) ignored: \(path) exists and is kept")
            }
            if defaulted {
                // The disk joins the VM's settings; the size has done its work
                // (kept, it would be "ignored" at every start).
                c.plan.settingsToSave += [("\(key)_backend", value), ("\(key)_enable", "yes"), ("\(key)_createsize", "")]
            }
            guard creating || c.dryRun || FileSystem.isReadable(path) else { throw c.invalid(setting, "no readable disk at \(path)") }
            if DiskImageKind.describe(path) == "POSIX tar archive" {
                throw c.invalid("\(key)_backend", "\(path) is an archive (.ova): let vmup or vmcreate convert it (answer yes, or use -y)")
            }
            let format = ImageFormat.detect(path) ?? "qcow2"
            if m == nil {
                if format == "qcow2" || format == "raw" {
                    m = ceiling
                    if format == "qcow2", ImageFormat.qcow2Version(path) == 2 {
                        c.notices.append("\(path) is an old qcow2 (v2) image; 'qemu-img amend -f qcow2 -o compat=1.1' upgrades it")
                    }
                } else {
                    m = ceiling == .rw ? .snap : ceiling
                    if ceiling == .rw {
                        c.notices.append("\(path) is a \(format) image: started in snapshot mode (convert it to qcow2, or use the rw: prefix to write to it)")
                    }
                }
            }
            if m == .rw, !creating, !c.dryRun, !FileSystem.isWritable(path) {
                throw c.invalid("\(key)_backend", "\(path) is not writable; start with -s or -r, or use the snap: or ro: prefix")
            }
            try emit(&c, file: path, format: format, index: index, mode: m!, bus: bus)
        }
    }

    /// The numbers N of every `<prefix>N_…` setting, in numeric order.
    static func numbers(of prefix: String, in settings: SettingsTable) -> [Int] {
        Set(settings.names.compactMap { name -> Int? in
            guard name.hasPrefix(prefix) else { return nil }
            let digits = name.dropFirst(prefix.count).prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, !digits.hasPrefix("0"), name.dropFirst(prefix.count + digits.count).hasPrefix("_") else { return nil }
            return Int(digits)
        }).sorted()
    }

    /// `no` written by the user (a VM file, template or the command line),
    /// not a default.
    static func isExplicitNo(_ c: QemuCommand, _ name: String) -> Bool { isExplicitNo(c.settings, name) }

    static func isExplicitNo(_ settings: SettingsTable, _ name: String) -> Bool {
        guard !settings.value(name).isEmpty, !settings.isYes(name) else { return false }
        switch settings.provenance(name) {
        case .vmFile, .template, .commandLine: return true
        default: return false
        }
    }

    /// Disk `n` is a new disk asked for by its createsize alone (vm.settings(5)):
    /// its slot is taken, though it has no backend yet.
    static func isRequestedByCreatesize(_ settings: SettingsTable, _ n: Int) -> Bool {
        let key = "vm_storage_hdd\(n)"
        let size = settings.value("\(key)_createsize")
        guard !size.isEmpty, size != "0", settings.value("\(key)_backend").isEmpty else { return false }
        return settings.isYes("\(key)_enable") || !isExplicitNo(settings, "\(key)_enable")
    }

    static func emit(_ c: inout QemuCommand, file: String, format: String?, index: Int, mode: Mode, bus: String) throws {
        let fmt = format.map { ",format=\($0)" } ?? ""
        switch mode {
        case .rw: c.append("-drive", "file=\(qemuEscape(file))\(fmt),if=\(bus),index=\(index),media=disk,discard=unmap,detect-zeroes=unmap")
        case .snap: c.append("-drive", "file=\(qemuEscape(file))\(fmt),if=\(bus),index=\(index),media=disk,snapshot=on")
        // IDE cannot attach a read-only disk (QEMU: "Block node is read-only").
        case .ro: c.append("-drive", "file=\(qemuEscape(file))\(fmt),if=virtio,read-only=on")
        }
    }
}
