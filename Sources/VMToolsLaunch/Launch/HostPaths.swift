import VMToolsCore

/// A host file, directory or device a start hands to the guest for it to
/// read or write (vm.settings(5), HOST PATHS).
public struct HostPath: Equatable, Sendable {
    public enum Access: String, Sendable {
        case readOnly = "read-only"
        case readWrite = "read-write"
        /// The guest writes to a temporary overlay; the file is only read.
        case snapshot = "snapshot"
    }

    /// The setting that hands it out (for a backing or data file, the disk's).
    public var setting: String
    /// Absolute, as QEMU or the seed gets it.
    public var path: String
    /// What it is to the setting's own file (the data file of a qcow2); nil for the file itself.
    public var via: Via?

    public struct Via: Equatable, Sendable, CustomStringConvertible {
        /// `backing file`, `data file`, `extent`.
        public var kind: String
        public static let backingFile = "backing file", dataFile = "data file"
        /// The image that names it.
        public var image: String
        public var description: String { "\(kind) of \(image)" }
    }
    public var access: Access
    public var provenance: Provenance
    /// The real path (links followed); for a file still to be made, its directory's.
    public var real: String
    /// Raw QEMU syntax (`vm_qemu_params`, a raw `-netdev` mode) rather than a
    /// path: `path` and `real` hold the value. It can open any host file or
    /// run a host command, so no tree or `cfg_host_paths` allows it
    /// (vm.settings(5), HOST PATHS).
    public var isRaw = false

    /// `setting=real-path`: a line of the acceptance digest (`AcceptedHostPaths`).
    public var recordLine: String { "\(setting)=\(real)" }

    /// The settings file it came from when that is a VM's (`vm.settings`,
    /// the VM's own or a parent's): those are not trusted by origin.
    public var vmFile: String? {
        if case let .vmFile(path, _, _) = provenance { return path }
        return nil
    }

    /// `vmup -n`: one line.
    public var dryRunLine: String {
        if isRaw { return "would pass raw QEMU syntax '\(path)' (\(setting), from \(provenance))" }
        let what = via.map { "\(setting): \($0)" } ?? setting
        return "would hand the guest \(path) (\(what), \(access.rawValue), from \(provenance))"
    }
}

/// Every host path a VM's settings hand to the guest, read from the
/// settings and the disks' qcow2 headers alone (modules only read, and
/// `vmcreate`/`vmfix -H` must find the same set without planning a start).
package enum HostPaths {
    /// The devices of `vm_usbN_device` count as paths below this directory,
    /// so `cfg_host_paths` can name it.
    package static let usbDirectory = "/dev/bus/usb"

    package static func collect(_ settings: SettingsTable, home: String?, environment: [String: String]) -> [HostPath] {
        let vm = VMSettings(settings)
        let base = home ?? FileSystem.currentDirectory()
        var out: [HostPath] = []
        func add(_ setting: String, _ path: String, _ access: HostPath.Access, via: HostPath.Via? = nil) {
            out.append(HostPath(setting: setting, path: path, via: via, access: access,
                                provenance: settings.provenance(setting) ?? .builtin, real: realPath(path)))
        }
        func local(_ value: String) -> String? {
            let b = StorageBackend(value)
            guard !b.location.isEmpty else { return nil }
            guard b.isRemote else { return b.path(home: base, environment: environment) }
            // QEMU's file protocol opens a host file whatever the scheme says.
            let lower = b.location.lowercased()
            return lower.hasPrefix("file://") ? String(b.location.dropFirst("file://".count)) : nil
        }

        // Disks: the file, and a qcow2's backing chain and data files.
        let ceiling = (try? vm.rwMode()) ?? .rw
        for n in vm.hddSlots {
            let disk = vm.hdd(n)
            guard disk.enabled, let path = local(disk.backend) else { continue }
            let prefix = StorageBackend(disk.backend).prefix
            let isDirectory = FileSystem.isDirectory(path)
            let format = isDirectory || !FileSystem.isRegularFile(path) ? nil : ImageFormat.detect(path)
            let access: HostPath.Access
            switch (prefix, ceiling) {
            case ("ro", _), (_, .ro): access = .readOnly
            case ("snap", _), (_, .snap): access = .snapshot
            case ("rw", _): access = .readWrite
            default:
                if isDirectory { access = .readOnly } else if let format, format != "qcow2", format != "raw" { access = .snapshot } else { access = .readWrite }
            }
            add(disk.keys.backend, path, access)
            if format == "vmdk" {
                for file in ImageFormat.vmdkDescriptorFiles(path) {
                    add(disk.keys.backend, file, access == .readWrite ? .readWrite : .readOnly, via: .init(kind: "extent", image: path))
                }
            }
            guard format == "qcow2" else { continue }
            if let data = ImageFormat.qcow2DataFile(path) { add(disk.keys.backend, data, access, via: .init(kind: HostPath.Via.dataFile, image: path)) }
            var image = path
            for backing in ImageFormat.qcow2BackingChain(path) {
                add(disk.keys.backend, backing, .readOnly, via: .init(kind: HostPath.Via.backingFile, image: image))
                if let data = ImageFormat.qcow2DataFile(backing) { add(disk.keys.backend, data, .readOnly, via: .init(kind: HostPath.Via.dataFile, image: backing)) }
                image = backing
            }
        }
        for n in vm.cdromSlots {
            let drive = vm.cdrom(n)
            guard drive.enabled, let path = local(drive.backend) else { continue }
            add(drive.keys.backend, path, .readOnly)
        }

        // Direct kernel boot.
        if !settings.value(SettingKey.bootKernel).isEmpty {
            for key in [SettingKey.bootKernel, SettingKey.bootInitrd] where !settings.value(key).isEmpty {
                add(key, vm.bootPath(key, home: home, environment: environment), .readOnly)
            }
        }

        // Files copied into the cloud-init seed and the install volumes.
        if (try? vm.cloudInitEnabled()) == true {
            for key in [SettingKey.cloudInitUserData, SettingKey.cloudInitNetworkConfig] {
                if let path = filePath(settings.value(key), base: base, environment: environment) { add(key, path, .readOnly) }
            }
            let keys = settings.value(SettingKey.cloudInitSSHKey).trimmingTrailingWhitespace()
            if keys.isEmpty, let found = try? vm.cloudInitKeys(home: home, environment: environment), let file = found.files.first {
                // vmtools' own choice, whoever left the setting empty.
                out.append(HostPath(setting: SettingKey.cloudInitSSHKey, path: file, via: nil, access: .readOnly,
                                    provenance: .derived("the first key in ~/.ssh, \(SettingKey.cloudInitSSHKey) being empty"), real: realPath(file)))
            } else if !keys.isEmpty, !VMSettings.startsLikePublicKey(keys) {
                for word in keys.split(separator: " ") {
                    if let path = filePath(String(word), base: base, environment: environment) { add(SettingKey.cloudInitSSHKey, path, .readOnly) }
                }
            }
        }
        for key in [SettingKey.installKickstart, SettingKey.installPreseed] {
            if let path = filePath(settings.value(key), base: base, environment: environment) { add(key, path, .readOnly) }
        }

        // Shared folders, relative paths from the home whose file set them.
        for id in vm.shareIDs {
            let keys = SettingKey.share(id)
            add(keys.path, vm.bootPath(keys.path, home: home, environment: environment),
                settings.value(keys.mode) == "ro" ? .readOnly : .readWrite)
        }

        // Host USB devices.
        if let devices = try? vm.usbDevices() {
            for (id, device) in devices {
                add(SettingKey.usbDevice(id), usbDirectory.appendingPathComponent(device.description), .readWrite)
            }
        }
        return out + rawValues(settings)
    }

    /// The raw QEMU values a start passes: `vm_qemu_params`, and each mode an
    /// enabled interface (or interface 1, which `networking_auto` may add)
    /// takes as a raw `-netdev` value or with options after `user,`.
    static func rawValues(_ settings: SettingsTable) -> [HostPath] {
        let vm = VMSettings(settings)
        var out: [HostPath] = []
        func add(_ setting: String, _ value: String) {
            guard !out.contains(where: { $0.setting == setting }) else { return }
            out.append(HostPath(setting: setting, path: value, via: nil, access: .readWrite,
                                provenance: settings.provenance(setting) ?? .builtin, real: value, isRaw: true))
        }
        let params = settings.value(SettingKey.qemuParams)
        if !params.allSatisfy(\.isWhitespace) { add(SettingKey.qemuParams, params) }
        for id in vm.nicIDs + ["1"] {
            let nic = vm.nic(id)
            guard nic.enabled || (id == "1" && nic.isUnset) else { continue }
            switch try? nic.model() {
            case .nat(let options)? where !options.isEmpty: add(nic.modeSource, nic.mode)
            case .raw?: add(nic.modeSource, nic.mode)
            default: continue
            }
        }
        return out
    }

    /// A file setting's path as `VMSettings.readableFile` takes it.
    static func filePath(_ value: String, base: String, environment: [String: String]) -> String? {
        var v = value
        guard !v.isEmpty else { return nil }
        if v.hasPrefix("~/"), let h = environment["HOME"] { v = h + v.dropFirst(1) }
        return v.hasPrefix("/") ? v : base + "/" + v
    }

    /// Links followed; a path that does not exist yet is judged by its directory.
    static func realPath(_ path: String) -> String {
        if path.hasPrefix(usbDirectory + "/") { return path }
        if let r = FileSystem.realPath(path) { return r }
        if let dir = FileSystem.realPath(path.deletingLastPathComponent) { return dir.appendingPathComponent(path.lastPathComponent) }
        return path
    }
}

/// Who decides which host paths a VM's own settings may hand to the guest
/// (vm.settings(5), HOST PATHS). Values from the defaults, a vmtools.conf, a
/// template or the command line are the user's decision. Values from a
/// `vm.settings` (the VM's or a parent's) are accepted when their real path
/// lies in the VM's tree, in `cfg_host_paths`, or when the user accepted
/// that file's set (`AcceptedHostPaths`).
package struct HostPathPolicy {
    /// The real paths of the VM's tree: its home and the homes of the
    /// ancestors that list the VM's line in their child lists (a fork lies
    /// anywhere and shares its parent's backing files; a `parent` line alone,
    /// which anyone can write, does not make another VM's home part of it).
    package var trees: [String]
    package var allow: [String]
    package var accepted: Set<String>
    /// The image caches (`imageCaches(environment:)`), read from without `cfg_host_paths`.
    package var imageCaches: [String]

    package init(trees: [String], allow: [String], accepted: Set<String>, imageCaches: [String] = []) {
        self.trees = trees
        self.allow = allow
        self.accepted = accepted
        self.imageCaches = imageCaches
    }

    /// The user's image cache and root's (vmimage(1), CACHE), real paths: a
    /// cached image is verified by its digest and only ever read, so a VM
    /// may have one as its disk's backing file or as a CD-ROM wherever its
    /// home lies (vm.settings(5), HOST PATHS). Writing to one is never accepted.
    package static func imageCaches(environment: [String: String]) -> [String] {
        let dirs = [ImageCache(environment: environment).directory, systemImageCache]
        return dirs.reduce(into: []) { out, d in
            let real = FileSystem.realPath(d) ?? d
            if !out.contains(real) { out.append(real) }
        }
    }

    /// Root's cache when XDG_CACHE_HOME is unset (`ImageCache(environment:)`).
    static let systemImageCache = "/var/cache/vmtools/images"

    /// Read from a cached image.
    package func isCachedImage(_ p: HostPath) -> Bool {
        Self.isCachedImage(p, caches: imageCaches)
    }

    static func isCachedImage(_ p: HostPath, caches: [String]) -> Bool {
        !p.isRaw && p.access != .readWrite && caches.contains { FileSystem.isWithin(p.real, $0) }
    }

    package init(vm: ResolvedVM, global: GlobalConfig, environment: [String: String]) throws {
        var trees = [FileSystem.realPath(vm.home) ?? vm.home]
        var child = vm.home
        for ancestor in vm.ancestors {
            let listed = ((try? ChildList.read(home: ancestor, global: global))?.children ?? []).map { FileSystem.realPath($0) ?? $0 }
            guard listed.contains(FileSystem.realPath(child) ?? child) else { break }
            trees.append(FileSystem.realPath(ancestor) ?? ancestor)
            child = ancestor
        }
        self.init(trees: trees, allow: try global.hostPathAllowList(), accepted: AcceptedHostPaths(environment: environment).load(),
                  imageCaches: Self.imageCaches(environment: environment))
    }

    /// The tree as messages name it: the VM's home, with its linked ancestors.
    package var tree: String {
        trees.count == 1 ? trees[0] : trees[0] + " (with " + trees.dropFirst().joined(separator: ", ") + ")"
    }

    package func isInTree(_ p: HostPath) -> Bool { !p.isRaw && trees.contains { FileSystem.isWithin(p.real, $0) } }
    package func isAllowed(_ p: HostPath) -> Bool { !p.isRaw && allow.contains { FileSystem.isWithin(p.real, $0) } || isCachedImage(p) }

    /// The host paths each `vm.settings` hands out from outside the tree,
    /// and its raw QEMU values, by file, in the order first met: what an
    /// acceptance covers (a file without raw values keeps the digest it had
    /// before they counted).
    package func outsideTree(_ paths: [HostPath]) -> [(file: String, paths: [HostPath])] {
        var groups: [(file: String, paths: [HostPath])] = []
        for p in paths where !isInTree(p) {
            guard let file = p.vmFile else { continue }
            if let i = groups.firstIndex(where: { $0.file == file }) { groups[i].paths.append(p) } else { groups.append((file, [p])) }
        }
        return groups
    }

    /// The digest an acceptance of one file's set records.
    package static func digest(_ paths: [HostPath]) -> String { AcceptedHostPaths.digest(paths.map(\.recordLine)) }

    /// The host paths refused: outside the tree, not in `cfg_host_paths`,
    /// in a set the user has not accepted.
    package func refused(_ paths: [HostPath]) -> [HostPath] {
        outsideTree(paths).flatMap { group -> [HostPath] in
            let open = group.paths.filter { !isAllowed($0) }
            if open.isEmpty || accepted.contains(Self.digest(group.paths)) { return [] }
            return open
        }
    }

    /// One error a refused path, naming the setting, the file and line it
    /// came from and the three ways out.
    package func errors(_ refused: [HostPath], home: String, global: GlobalConfig) -> [VMToolsError] {
        let conf = global.paths.userConfig ?? "~/.config/vmtools/vmtools.conf"
        return refused.map { p in
            if p.isRaw {
                return VMToolsError(.failure, p.setting, "'\(p.path)' (from \(p.provenance)) is raw QEMU syntax, which can make QEMU open any host file or run host commands, so the VM's own settings may not pass it unaccepted; give it with -o, or check the VM and accept it with 'vmfix -H \(home)'")
            }
            let what = p.via.map { "the \($0.kind) '\(p.path)' of \($0.image)" } ?? "'\(p.path)'"
            let shown = p.real == p.path ? "" : " (really \(p.real))"
            return VMToolsError(.failure, p.setting, "\(what)\(shown) (from \(p.provenance)) lies outside the VM's tree \(tree), so its own settings may not hand it to the guest; give it with -o, list it in \(SettingKey.hostPaths) in \(conf), or check the VM and accept its host paths with 'vmfix -H \(home)'")
        }
    }
}

extension HostPathPolicy {
    /// An image named on the command line (a bare boot, `-c`, `-d`, `-o`) is
    /// the user's, not the files its header names: its data file, and backing
    /// files or extents outside its own directory, only inside
    /// `cfg_host_paths` (vm.settings(5), HOST PATHS). One error each.
    package static func commandLineImageErrors(_ paths: [HostPath], allow: [String], imageCaches: [String] = []) -> [VMToolsError] {
        paths.compactMap { p -> VMToolsError? in
            if isCachedImage(p, caches: imageCaches) { return nil }
            guard let via = p.via, !p.isRaw, case .commandLine = p.provenance,
                  let top = paths.first(where: { $0.setting == p.setting && $0.via == nil && !$0.isRaw }) else { return nil }
            let beside = via.kind != HostPath.Via.dataFile && FileSystem.isWithin(p.real, top.real.deletingLastPathComponent)
            guard !beside, !allow.contains(where: { FileSystem.isWithin(p.real, $0) }) else { return nil }
            let shown = p.real == p.path ? "" : " (really \(p.real))"
            return VMToolsError(.failure, top.path, "its \(via.kind) '\(p.path)'\(shown)\(via.image == top.path ? "" : " (of \(via.image))") would reach the guest, and naming the image does not accept the files it names; check it, and list it in \(SettingKey.hostPaths) (-o \(SettingKey.hostPaths)=DIR, or in vmtools.conf) to accept it")
        }
    }

    /// Refuses, with the first refusal, a VM whose own settings name host
    /// paths the user did not accept: copying, forking, merging or
    /// exporting it would carry those files into a tree (or an archive)
    /// where nothing marks them as outside any more (vmcp(1), vmmerge(1)).
    package static func require(_ vm: ResolvedVM, global: GlobalConfig, environment: [String: String],
                                where include: (HostPath) -> Bool = { _ in true }) throws {
        let policy = try HostPathPolicy(vm: vm, global: global, environment: environment)
        let refused = policy.refused(HostPaths.collect(vm.settings, home: vm.home, environment: environment)).filter(include)
        if let first = policy.errors(refused, home: vm.home, global: global).first { throw first }
    }

    /// Accepts the host paths outside its tree that the VM in `home` hands
    /// out, as its files say now: for a command that wrote them from its own
    /// command line (vmcreate(1)) or a user who checked them (vmfix(1) -H).
    /// Returns the sets newly accepted; with `dryRun`, records nothing.
    @discardableResult
    package static func accept(home: String, global: GlobalConfig, environment: [String: String],
                               dryRun: Bool = false) throws -> [(file: String, paths: [HostPath])] {
        // The files alone: no -o of the command that asks.
        let vm = try SettingsResolver(paths: global.paths).loadVM(home: home, global: global)
        let policy = try HostPathPolicy(vm: vm, global: global, environment: environment)
        let open = policy.outsideTree(HostPaths.collect(vm.settings, home: home, environment: environment))
            .filter { !policy.accepted.contains(digest($0.paths)) }
        if !dryRun { try AcceptedHostPaths(environment: environment).record(open.map { digest($0.paths) }) }
        return open
    }
}

