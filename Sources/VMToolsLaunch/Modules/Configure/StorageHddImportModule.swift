import VMToolsCore

#if canImport(Glibc)
import Glibc
#endif

/// `storage_hdd_import`: offers to convert third-party disk images (VMDK,
/// VHD, VHDX, VDI) and appliances (`.ova`, `.ovf`, `.vmx`) into qcow2. Refused, the
/// image runs in snapshot mode. Formats come from the image itself, never
/// from `file` wording; the destination is never the source. It only
/// reads (and unpacks an `.ova` to read its descriptor): the conversions
/// are steps of the plan, carried out by the executor (Docs/ARCHITECTURE.md).
public enum StorageHddImportModule: ConfigureModule {
    public static let name = "storage_hdd_import"

    public static func configure(_ c: inout Configuration) throws {
        // Ctrl-C or SIGTERM while an archive is unpacked: it goes before
        // the command ends (vmtools(7) CRASH SAFETY).
        let before = c.workDirectories.count
        do {
            try Interrupt.deferring { try convertImages(&c) }
        } catch {
            for w in c.workDirectories.dropFirst(before) { w.remove() }
            c.workDirectories.removeSubrange(before...)
            throw error
        }
    }

    static func convertImages(_ c: inout Configuration) throws {
        for n in c.vm.hddSlots where c.vm.hdd(n).createsizeText.isEmpty {
            let setting = SettingKey.hdd(n).backend
            let value = c.vm.hdd(n).backend
            guard !value.isEmpty else { continue }
            let b = StorageBackend(value)
            guard !b.isRemote else { continue }
            let source = b.path(home: c.home, environment: c.environment)
            guard FileSystem.isRegularFile(source) else { continue }
            let probe = ImageProbe(source)
            let appliance = Appliance.kind(of: source, probe: probe)
            let format = appliance?.rawValue ?? (probe?.kind.format ?? "raw")
            guard !["qcow2", "raw"].contains(format) else { continue }
            c.console.notice("\(source) is a \(format) image; vmtools works best with qcow2")
            guard try c.prompter.confirm("Convert it to qcow2 (the original is kept)") else { continue }
            let dir = c.home ?? source.deletingLastPathComponent
            var base = source.lastPathComponent
            if let dot = base.lastIndex(of: "."), dot != base.startIndex { base = String(base[..<dot]) }
            let preallocation = try c.vm.hdd(n).preallocation()
            guard let kind = appliance else {
                // Never the source itself: it exists, so it is never free.
                let dest = newPath(in: dir, base: base, c)
                // The user named the image (a link is theirs to make); what it names must be beside it.
                let format = try ImportedImage.check(source, member: source.lastPathComponent, subject: source, followLink: true)
                convert(source, format: format, to: dest, preallocation: preallocation, &c)
                c.override(setting, (b.prefix.map { $0 + ":" } ?? "") + dest, by: name)
                continue
            }
            try importAppliance(source, kind: kind, slot: n, prefix: b.prefix, in: dir, base: base, preallocation: preallocation, &c)
        }
    }

    /// An OVA, OVF or VMX: every disk converted, in order, from slot `slot`
    /// on (free slots after it for the others); CPUs, memory, NICs and
    /// firmware from its descriptor, unless given with -o (vmcreate(1)
    /// Imported appliances).
    static func importAppliance(_ source: String, kind: Appliance.Kind, slot: Int, prefix: String?, in dir: String, base: String,
                                preallocation: VMSettings.Drive.Preallocation, _ c: inout Configuration) throws {
        let a = try Appliance.read(source, kind: kind, unpackIn: dir)
        // Its disks are converted by the executor, which then removes it.
        if let work = a.work { c.workDirectories.append(work) }
        let top = a.work?.path ?? source.deletingLastPathComponent
        guard !a.disks.isEmpty else { throw VMToolsError(.failure, source, "the .\(kind) names no disk") }
        var n = slot
        for (k, disk) in a.disks.enumerated() {
            if k > 0 {
                repeat { n += 1 } while !c.vm.hdd(n).backend.isEmpty
            }
            let dest = newPath(in: dir, base: k == 0 ? base : "\(base)-disk\(k + 1)", c)
            let member = FileSystem.isWithin(disk, top) && disk != top ? String(disk.dropFirst(top.count + 1)) : disk.lastPathComponent
            let format = try ImportedImage.check(disk, member: member, subject: source)
            convert(disk, format: format, subject: source, to: dest, preallocation: preallocation, unpacked: a.work?.path, &c)
            c.override(SettingKey.hdd(n).backend, (prefix.map { $0 + ":" } ?? "") + dest, by: name)
            if k > 0 { c.override(SettingKey.hdd(n).enable, "yes", by: name) }
        }
        guard let d = a.descriptor else { return }
        // A new VM's name (its file's vm_name line); a bare image run by vmup keeps the file's name.
        if c.home != nil, !d.name.isEmpty, c.settings.provenance(SettingKey.name).map({ if case .commandLine = $0 { false } else { true } }) ?? true {
            c.assign(SettingKey.name, d.name, by: name)
        }
        if let cpus = d.cpus { adopt(SettingKey.cpuCount, String(cpus), &c) }
        if let mb = d.memoryMB, mb > 0 { adopt(SettingKey.ramSize, "\(mb)M", &c) }
        if d.efi { adopt(SettingKey.firmware, (d.secureBoot ? VMSettings.Firmware.uefiSecure : .uefi).rawValue, &c) }
        if d.nics.isEmpty { adopt(SettingKey.nic("1").enable, "no", &c) }
        for (i, model) in d.nics.enumerated() {
            let keys = SettingKey.nic(String(i + 1))
            adopt(keys.enable, "yes", &c)
            if let device = OVFDescriptor.device(ofSubtype: model) {
                adopt(keys.device, device, &c)
            } else {
                c.console.notice("\(source): network adapter \(i + 1) is a '\(model)', which QEMU does not emulate; \(keys.device) is not set")
            }
            if let mac = d.macs[i], (try? MACAddress.parsePrefix(mac))?.count == 6 {
                adopt(keys.mac, mac, &c)
            } else if c.value(keys.mac).isEmpty {
                do {
                    adopt(keys.mac, try MACAddress.random(prefix: c.vm.defaultMACPrefix), &c)
                } catch let e as VMToolsError {
                    throw VMToolsError(.failure, SettingKey.defaultMAC, e.message)
                }
            }
        }
    }

    /// The appliance's value, unless the command line gave one.
    static func adopt(_ setting: String, _ value: String, _ c: inout Configuration) {
        if case .commandLine? = c.settings.provenance(setting) { return }
        c.override(setting, value, by: name)
    }

    /// A `.qcow2` name in `dir` that neither exists nor is planned already.
    static func newPath(in dir: String, base: String, _ c: Configuration) -> String {
        FileSystem.newPath(in: dir, base: base, suffix: ".qcow2") { p in !FileSystem.exists(p) && !c.conversions.contains { $0.destination == p } }
    }

    /// Plans the conversion of `input` to qcow2 at `dest`; `subject` (the
    /// image or appliance given) names errors. The format is given (`-f`,
    /// from `ImportedImage.check`): a probe could take the file for another
    /// format that names host files.
    static func convert(_ input: String, format: String, subject: String? = nil, to dest: String,
                        preallocation: VMSettings.Drive.Preallocation = .off, unpacked: String? = nil, _ c: inout Configuration) {
        c.conversions.append(.init(source: input, format: format, subject: subject ?? input, destination: dest, compress: c.vm.qemuCompress,
                                   preallocation: preallocation.rawValue, unpacked: unpacked))
    }
}
