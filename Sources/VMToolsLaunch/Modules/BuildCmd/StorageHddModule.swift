import VMToolsCore

/// `storage_hdd`: hard disks on the primary IDE channel (vmtools(7) CUSTOMIZATION;
/// room for hdd1 and hdd2), or any number on virtio
/// (`vm_storage_hdd_interface=virtio`), with the fixes QEMU 7.2 needs:
/// explicit formats, `read-only=on` on a bus that supports it (virtio; IDE disks cannot be read-only), VVFAT through
/// `-drive`, and a `createsize` that never destroys an existing disk. A disk
/// to create goes into the plan; `LaunchExecutor` makes it.
public enum StorageHddModule: BuildCmdModule {
    public static let name = "storage_hdd"

    typealias Mode = VMSettings.DiskMode

    public static func build(_ c: inout QemuCommand) throws {
        let ceiling = try c.vm.rwMode()
        let bus = try c.vm.hddInterface().rawValue
        for n in c.vm.hddSlots {
            let disk = c.vm.hdd(n)
            let keys = disk.keys, key = keys.prefix
            let size = disk.createsizeText
            var value = disk.backend
            if !disk.enabled {
                // A createsize alone asks for a new disk (vm.settings(5)); beside
                // a backend the user disabled, it is ignored, but not silently.
                // 0 is vmcreate's answer for "no disk".
                guard !size.isEmpty, size != "0" else { continue }
                if !value.isEmpty || disk.isExplicitlyDisabled {
                    c.notices.append("\(keys.createsize)=\(size) ignored: the disk is disabled (\(keys.enable)=\(disk.enableValue))")
                    continue
                }
            }
            _ = try disk.createsize()
            var defaulted = false
            if value.isEmpty {
                guard !size.isEmpty else { throw c.invalid(keys.backend, "disk \(n) is enabled but has no backend file") }
                guard c.home != nil else { throw c.invalid(keys.createsize, "a new disk needs a VM home") }
                value = "hdd\(n).qcow2"
                defaulted = true
            }
            if bus == "ide", n > 2 {
                throw c.invalid(SettingKey.hddInterface, "IDE has room for two hard disks (hdd1, hdd2); \(key) needs \(SettingKey.hddInterface)=virtio")
            }
            let b = StorageBackend(value)
            guard !b.location.isEmpty else { throw c.invalid(keys.backend, "empty path") }
            var mode: Mode?
            switch b.prefix {
            case "rw": mode = ceiling
            case "snap": mode = ceiling == .ro ? .ro : .snap
            case "ro": mode = .ro
            default: mode = nil
            }
            let index = n - 1
            let setting = disk.backend.isEmpty ? keys.createsize : keys.backend
            if b.isRemote {
                if !size.isEmpty { throw c.invalid(keys.createsize, "a remote disk cannot be created") }
                if try disk.size() != nil { throw c.invalid(keys.size, "a remote disk cannot be grown") }
                let lower = b.location.lowercased()
                let m = mode ?? (lower.hasPrefix("iscsi://") || lower.hasPrefix("nbd:") ? ceiling : (ceiling == .ro ? .ro : .snap))
                try emit(&c, file: b.location, format: nil, index: index, mode: m, bus: bus)
                c.plan.machine.disks.append(.init(slot: n, setting: setting, source: .remote(b.location), format: nil, mode: m,
                                                  bus: m == .ro ? .virtio : Machine.Bus(rawValue: bus) ?? .ide, index: m == .ro ? nil : index))
                continue
            }
            var path = b.path(home: c.home, environment: c.environment)
            // A planned conversion's destination: its directory may be a bare
            // boot's run directory, which `vmup -n` never makes.
            if !c.plan.conversions.contains(where: { $0.destination == path }) {
                do {
                    path = try FileSystem.canonicalize(path, cwd: FileSystem.currentDirectory())
                } catch let e as VMToolsError {
                    throw c.invalid(keys.backend, e.description)
                }
            }
            if FileSystem.isDirectory(path) {
                if !size.isEmpty { throw c.invalid(keys.createsize, "a shared directory cannot be created") }
                if try disk.size() != nil { throw c.invalid(keys.size, "a shared directory cannot be grown") }
                let m = mode ?? .ro
                if m == .snap { throw c.invalid(keys.backend, "a shared directory cannot be used in snapshot mode; use rw: or ro:") }
                let file = m == .rw ? "fat:rw:\(path)" : "fat:\(path)"
                c.append("-drive", "file=\(qemuEscape(file)),format=raw,if=\(bus),index=\(index),media=disk" + (m == .rw ? "" : ",snapshot=on"))
                c.plan.machine.disks.append(.init(slot: n, setting: setting, source: .directory(path), format: "raw", mode: m,
                                                  bus: Machine.Bus(rawValue: bus) ?? .ide, index: index))
                continue
            }
            // A FIFO would hold this plan, and QEMU, in open(2) for ever.
            if let problem = FileSystem.imageFileProblem(path) { throw c.invalid(keys.backend, problem) }
            var m = mode
            // An imported image the executor converts first (LaunchPlan.conversions): there by then, a qcow2.
            let converting = c.plan.conversions.contains { $0.destination == path }
            let creating = !size.isEmpty && !FileSystem.exists(path) && !converting
            if !creating, FileSystem.exists(path) { try planGrowth(&c, disk, path: path, mode: m ?? ceiling) }
            if (m ?? ceiling) == .rw, ceiling == .rw, !c.children.isEmpty {
                throw VMToolsError(.failure, c.home ?? path, "has children (\(c.children.joined(separator: ", "))); start it with -s (snapshot) or -r (read-only) so their disks stay valid")
            }
            // A missing disk with a createsize is the executor's to make (Docs/vmup.1).
            if creating {
                guard (m ?? ceiling) == .rw, ceiling == .rw else { throw c.invalid(keys.createsize, "a disk cannot be created in snapshot or read-only mode") }
                c.plan.disksToCreate.append(.init(path: path, size: try creationSize(c, disk, createsize: size),
                                                  preallocation: try disk.preallocation().rawValue, position: c.notices.count))
            } else if !size.isEmpty {
                // The original deleted and recreated the disk here: never.
                c.notices.append("\(keys.createsize)=\(size) ignored: \(path) exists and is kept")
            }
            if defaulted {
                // The disk joins the VM's settings; the size has done its work
                // (kept, it would be "ignored" at every start).
                c.plan.settingsToSave += [(keys.backend, value), (keys.enable, "yes"), (keys.createsize, "")]
            }
            guard creating || converting || c.dryRun || FileSystem.isReadable(path) else { throw c.invalid(setting, "no readable disk at \(path)") }
            let probe = ImageProbe(path)
            switch Appliance.kind(of: path, probe: probe) {
            case .ova?: throw c.invalid(keys.backend, "\(path) is an archive (.ova): let vmup or vmcreate convert it (answer yes, or use -y)")
            case let kind?: throw c.invalid(keys.backend, "\(path) describes a VM (.\(kind)): let vmup or vmcreate convert it (answer yes, or use -y)")
            case nil: break
            }
            let format = probe?.kind.format ?? "qcow2"
            if m == nil {
                if format == "qcow2" || format == "raw" {
                    m = ceiling
                    if probe?.kind == .qcow2(version: 2) {
                        c.notices.append("\(path) is an old qcow2 (v2) image; 'qemu-img amend -f qcow2 -o compat=1.1' upgrades it")
                    }
                } else {
                    m = ceiling == .rw ? .snap : ceiling
                    if ceiling == .rw {
                        c.notices.append("\(path) is a \(format) image: started in snapshot mode (convert it to qcow2, or use the rw: prefix to write to it)")
                    }
                }
            }
            if m == .rw, !creating, !converting, !c.dryRun, !FileSystem.isWritable(path) {
                throw c.invalid(keys.backend, "\(path) is not writable; start with -s or -r, or use the snap: or ro: prefix")
            }
            let attached = m ?? ceiling
            try emit(&c, file: path, format: format, index: index, mode: attached, bus: bus)
            // As emit attaches it: IDE cannot hold a read-only disk.
            c.plan.machine.disks.append(.init(slot: n, setting: setting, source: .file(path), format: format, mode: attached,
                                              bus: attached == .ro ? .virtio : Machine.Bus(rawValue: bus) ?? .ide, index: attached == .ro ? nil : index,
                                              creating: creating, backingChain: creating ? [] : nil))
        }
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
