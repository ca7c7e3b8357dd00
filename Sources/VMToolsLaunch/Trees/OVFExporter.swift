import VMToolsCore
import VMToolsQEMU

#if canImport(Glibc)
import Glibc
#endif

/// `vmcp -a VM DEST.ova|DEST.ovf` (vmcp(1) OVF and OVA): the resolved VM as
/// an OVF 1.0 descriptor, one streamOptimized VMDK per disk and a SHA-256
/// manifest; in a tar (`.ova`, descriptor first) or as files beside DEST.
/// Everything is made in a private directory and moved into place last, so
/// a failure leaves nothing. Settings an OVF cannot carry get a NOTICE each.
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
        var (descriptor, disks) = try describe(settings, name: settings.name.isEmpty ? source.lastPathComponent : settings.name,
                                               home: source, base: base)

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

    /// The descriptor (without file sizes) and the disks' paths, in order;
    /// a NOTICE for each setting the OVF leaves behind.
    func describe(_ vm: VMSettings, name: String, home: String, base: String) throws -> (OVFDescriptor, [String]) {
        var d = OVFDescriptor(name: name)
        var carried: Set<String> = [SettingKey.name, SettingKey.cpuCount, SettingKey.ramSize, SettingKey.firmware,
                                    SettingKey.defaultNICDevice, SettingKey.defaultMAC]
        d.cpus = try vm.cpuCount() ?? 1
        d.memoryMB = try vm.ramSize()?.mebibytes ?? 128
        let firmware = try vm.firmware()
        d.efi = firmware != .bios
        d.secureBoot = firmware == .uefiSecure
        if try vm.tpm() == .none { carried.insert(SettingKey.tpm) }

        var disks: [String] = []
        for n in vm.hddSlots.sorted() {
            let drive = vm.hdd(n)
            guard drive.enabled, !drive.backend.isEmpty else { continue }
            let b = StorageBackend(drive.backend)
            guard !b.isRemote else { throw VMToolsError(.failure, drive.keys.backend, "'\(drive.backend)': a remote disk cannot go into an OVF") }
            let path = b.path(home: home, environment: environment)
            guard FileSystem.isReadable(path) else { throw VMToolsError(.failure, drive.keys.backend, "no readable disk at \(path)") }
            let info = try QemuImg.info(path, backingChain: false, environment: environment)
            guard let size = info["virtual-size"]?.integerValue else { throw VMToolsError(.failure, path, "qemu-img info gives no virtual size") }
            disks.append(path)
            d.disks.append(.init(file: "\(base)-disk\(disks.count).vmdk", capacity: size))
            carried.insert(drive.keys.backend)
            carried.insert(drive.keys.enable)
        }

        var ids = vm.nicIDs.sorted { (Int($0) ?? 0) < (Int($1) ?? 0) }
        ids.removeAll { !vm.nic($0).enabled }
        for id in ids {
            let nic = vm.nic(id)
            d.nics.append(OVFDescriptor.subtype(ofDevice: try nic.device()))
            // Only a MAC the VM fixes: a derived one is derived again on import.
            if !vm.table.value(nic.keys.mac).isEmpty, let mac = try? nic.mac() { d.macs[d.nics.count - 1] = mac }
            carried.formUnion([nic.keys.enable, nic.keys.device, nic.keys.mac])
            if case .nat(options: "") = try nic.model() { carried.insert(nic.keys.mode); carried.insert(SettingKey.defaultNICMode) }
        }

        for n in vm.table.names where SettingKey.isRecorded(n) && !carried.contains(n) {
            switch vm.table.provenance(n) {
            case .vmFile?, .template?, .commandLine?: break
            default: continue
            }
            let value = vm.table.value(n)
            // A disabled device or an empty value leaves nothing behind.
            if value.isEmpty || (n.hasSuffix("_enable") && !vm.table.isYes(n)) { continue }
            console.notice("\(n)='\(value)': an OVF cannot carry it; not exported")
        }
        return (d, disks)
    }
}
