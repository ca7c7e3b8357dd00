import VMToolsCore
import VMToolsQEMU

#if canImport(Glibc)
import Glibc
#endif

/// `vmcp -a VM DEST.ova|DEST.ovf` (vmcp(1) OVF and OVA): the resolved VM as
/// an OVF 1.0 descriptor, one streamOptimized VMDK per disk and a SHA-256
/// manifest; in a tar (`.ova`, descriptor first) or as files beside DEST.
/// Everything is made in a private directory and moved into place last, so
/// a failure leaves nothing. It describes the machine a start would run
/// (`ExportPlan`); settings an OVF cannot carry get a NOTICE each.
package struct OVFExporter {
    package enum Kind { case ova, ovf }

    var global: GlobalConfig
    var resolver: SettingsResolver
    var environment: [String: String]
    var console: Console
    /// `-n`: the source is not locked (read-only media), only checked not to be running.
    var noLock = false

    package init(global: GlobalConfig, resolver: SettingsResolver, environment: [String: String], console: Console, noLock: Bool = false) {
        self.noLock = noLock
        self.global = global
        self.resolver = resolver
        self.environment = environment
        self.console = console
    }

    /// `.ova` or `.ovf` (any case), else nil: a VM directory.
    package static func kind(of destination: String) -> Kind? {
        let d = destination.lowercased()
        return d.hasSuffix(".ova") ? .ova : d.hasSuffix(".ovf") ? .ovf : nil
    }

    /// Exports `source` (canonical VM home) to `destination` (canonical); returns the files written.
    @discardableResult
    package func export(_ source: String, to destination: String) throws -> [String] {
        guard let kind = Self.kind(of: destination) else { throw VMToolsError(.failure, destination, "not an .ova or .ovf name") }
        let dir = destination.deletingLastPathComponent
        guard FileSystem.isDirectory(dir), FileSystem.isWritable(dir) else {
            throw VMToolsError(.failure, destination, "its directory does not exist or is not writable")
        }
        let fileName = destination.lastPathComponent
        let stem = String(fileName.dropLast(4))
        // Member names go into tar headers and XML: plain ASCII, short.
        var base = String(stem.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "_" }.prefix(80))
        if base.isEmpty || base.hasPrefix(".") { base = "vm" + base }
        let locks = LockSet(global: global, console: console)
        if noLock {
            if let p = RunningState.process(home: source, global: global) {
                throw VMToolsError(.failure, source, "is running (pid \(p.pid)); stop it first (vmdown)")
            }
        } else {
            _ = try locks.lock(source, whatFor: "its disks are in use")
        }
        defer { locks.releaseAll() }
        let vm = try resolver.loadVM(home: source, global: global)
        // An appliance carries its disks to others: none may be a host file
        // the user did not accept (the rest is only named in the descriptor).
        try HostPathPolicy.require(vm, global: global, environment: environment) {
            $0.setting.hasPrefix(SettingKey.hddPrefix) || $0.setting.hasPrefix(SettingKey.cdromPrefix)
        }
        let settings = VMSettings(vm.settings)
        let planned = try ExportPlan.machine(vm, accelerator: try ExportPlan.accelerator(vm.settings), global: global, environment: environment)
        let description = try describe(planned.machine, settings: settings, name: settings.name.isEmpty ? source.lastPathComponent : settings.name,
                                       base: base, skipped: planned.notes)
        description.notices.forEach { console.notice($0) }
        var descriptor = description.descriptor
        let disks = description.disks

        let workDirectory = try WorkDirectory(in: dir, prefix: WorkDirectory.exportPrefix, purpose: "export into")
        let work = workDirectory.path
        defer { workDirectory.remove() }

        let qemuImg = try QemuImg.executable(source, environment: environment, purpose: "cannot export")
        for (i, disk) in disks.enumerated() {
            try Interrupt.check()
            let out = work.appendingPathComponent(descriptor.disks[i].file)
            console.progress("converting \(disk) to a streamOptimized VMDK")
            let r = try Subprocess(qemuImg, ["convert", "-O", "vmdk", "-o", "subformat=streamOptimized", "--", disk, out]).run()
            guard r.status == 0 else {
                throw VMToolsError(.failure, disk, "conversion to VMDK failed: \(r.stderrText.trimmingTrailingWhitespace())")
            }
            var st = stat()
            guard stat(out, &st) == 0 else { throw VMToolsError(.failure, out, "the converted disk is missing") }
            descriptor.disks[i].size = Int(st.st_size)
        }
        try Interrupt.check()
        let descriptorName = kind == .ova ? base + ".ovf" : fileName
        let descriptorBytes = Array(descriptor.render().utf8)
        try FileSystem.writeAtomically(descriptorBytes, to: work.appendingPathComponent(descriptorName), syncDirectory: false)
        var hash = SHA256()
        hash.update(descriptorBytes)
        var manifest = "SHA256(\(descriptorName))= \(hash.finalize())\n"
        for d in descriptor.disks {
            let path = work.appendingPathComponent(d.file)
            try FileSystem.syncFile(path)
            manifest += "SHA256(\(d.file))= \(try SHA256.file(path))\n"
        }
        let manifestName = String(descriptorName.dropLast(4)) + ".mf"
        try FileSystem.writeAtomically(Array(manifest.utf8), to: work.appendingPathComponent(manifestName), syncDirectory: false)

        // Members in their final order: descriptor, disks, manifest (DSP0243 5.3).
        let members = [descriptorName] + descriptor.disks.map(\.file) + [manifestName]
        switch kind {
        case .ova:
            let ova = work.appendingPathComponent(".ova")
            let fd = open(ova, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw VMToolsError(.failure, ova, "cannot create: \(FileSystem.errnoMessage())") }
            do {
                let tar = TarWriter(fd: fd, path: destination)
                for m in members { try tar.add(name: m, file: work.appendingPathComponent(m)) }
                try tar.finish()
                guard fsync(fd) == 0 else { throw VMToolsError(.failure, destination, "cannot write: \(FileSystem.errnoMessage())") }
                close(fd)
            } catch {
                close(fd)
                throw error
            }
            try place([(ova, destination)])
            return [destination]
        case .ovf:
            // The descriptor last: until it is there, nothing names the disks.
            let moves = (members.dropFirst() + [descriptorName]).map { (work.appendingPathComponent($0), dir.appendingPathComponent($0)) }
            try place(moves)
            return moves.map(\.1)
        }
    }

    /// Links each file into place, never over an existing one; on a failure
    /// the ones already placed are removed.
    func place(_ moves: [(String, String)]) throws {
        var placed: [String] = []
        do {
            for (from, to) in moves {
                try Interrupt.check()
                guard link(from, to) == 0 else {
                    throw VMToolsError(.failure, to, errno == EEXIST ? "exists; not overwritten" : "cannot create: \(FileSystem.errnoMessage())")
                }
                placed.append(to)
            }
            FileSystem.syncDirectory(moves[0].1.deletingLastPathComponent)
        } catch {
            for p in placed { try? FileSystem.removeFile(p) }
            throw error
        }
    }

    /// What an OVF says of a machine: the descriptor (without file sizes),
    /// the disks' paths in order, the settings it carries, and a NOTICE line
    /// for each setting it leaves behind.
    struct Description {
        var descriptor: OVFDescriptor
        var disks: [String] = []
        var carried: Set<String> = []
        var notices: [String] = []
    }

    func describe(_ m: Machine, settings vm: VMSettings, name: String, base: String, skipped: [ExportPlan.Note] = []) throws -> Description {
        var d = Description(descriptor: OVFDescriptor(name: name))
        d.carried = [SettingKey.name, SettingKey.cpuCount, SettingKey.ramSize, SettingKey.firmware,
                     SettingKey.defaultNICDevice, SettingKey.defaultMAC]
        d.descriptor.cpus = m.cpus ?? 1
        d.descriptor.memoryMB = m.ram?.mebibytes ?? 128
        d.descriptor.efi = m.firmware.kind != .bios
        d.descriptor.secureBoot = m.firmware.kind == .uefiSecure
        if m.tpm == nil { d.carried.insert(SettingKey.tpm) }

        // A disk this start would create holds nothing yet.
        for disk in m.disks.sorted(by: { $0.slot < $1.slot }) where !disk.creating {
            let keys = vm.hdd(disk.slot).keys
            let path: String
            switch disk.source {
            case .remote: throw VMToolsError(.failure, keys.backend, "'\(vm.hdd(disk.slot).backend)': a remote disk cannot go into an OVF")
            case .directory(let dir): throw VMToolsError(.failure, keys.backend, "'\(dir)': a directory served as a disk cannot go into an OVF")
            case .file(let p): path = p
            }
            guard FileSystem.isReadable(path) else { throw VMToolsError(.failure, keys.backend, "no readable disk at \(path)") }
            let info = try QemuImg.info(path, backingChain: false, environment: environment)
            guard let size = info["virtual-size"]?.integerValue else { throw VMToolsError(.failure, path, "qemu-img info gives no virtual size") }
            d.disks.append(path)
            d.descriptor.disks.append(.init(file: "\(base)-disk\(d.disks.count).vmdk", capacity: size))
            d.carried.insert(keys.backend)
            d.carried.insert(keys.enable)
        }

        for nic in m.nics.sorted(by: { (Int($0.id) ?? 0) < (Int($1.id) ?? 0) }) {
            let keys = SettingKey.nic(nic.id)
            d.descriptor.nics.append(OVFDescriptor.subtype(ofDevice: nic.device))
            // Only a MAC the VM fixes: a derived one is derived again on import.
            if nic.fixedMAC { d.descriptor.macs[d.descriptor.nics.count - 1] = nic.mac }
            d.carried.formUnion([keys.enable, keys.device, keys.mac])
            if case .nat(options: "") = nic.mode { d.carried.insert(keys.mode); d.carried.insert(SettingKey.defaultNICMode) }
        }

        d.notices = skipped.map { "\($0.setting): \($0.why)" }
        for n in ExportPlan.leftOver(vm.table, covered: d.carried) {
            d.notices.append("\(n)='\(vm.table.value(n))': an OVF cannot carry it; not exported")
        }
        return d
    }
}
