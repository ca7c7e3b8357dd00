import VMToolsCore
import VMToolsQEMU
import VMToolsLaunch

#if canImport(Glibc)
import Glibc
#endif

/// One VM as vminfo reports it (vminfo(1)): each fact gathered once, here,
/// then rendered as the text sections (VMReport+Text.swift) or as `-j`'s
/// object (VMReport+JSON.swift). Only the parts a rendering shows are
/// gathered: a part can cost file reads, a QMP round trip or qemu-img, and
/// `vminfo -t` must stay as cheap as it is.
///
/// Read from the settings and the running process today; `firmware`, `tpm`,
/// `usb`, `shares` and the drives' slots and modes describe the machine a
/// start builds, and are the facts a resolved machine description would fill.
struct VMReport {
    /// Which facts to gather.
    struct Parts: OptionSet {
        let rawValue: Int
        /// State and what the running process says; USB, firmware, TPM.
        static let general = Parts(rawValue: 1 << 0)
        /// Display and monitor socket (the display may ask QMP), the child list.
        static let details = Parts(rawValue: 1 << 1)
        /// Space used in the home (vminfo -il).
        static let usage = Parts(rawValue: 1 << 2)
        /// Shares' mount commands and the display password: only the text shows them.
        static let access = Parts(rawValue: 1 << 3)
        /// Listed children that are not there (vminfo -j).
        static let missingChildren = Parts(rawValue: 1 << 4)
        static let tree = Parts(rawValue: 1 << 5)
        static let drives = Parts(rawValue: 1 << 6)
        /// qemu-img's own report of each local image, as text (vminfo -lb) or JSON (vminfo -j).
        static let imageText = Parts(rawValue: 1 << 7)
        static let imageJSON = Parts(rawValue: 1 << 8)
        static let modules = Parts(rawValue: 1 << 9)
        /// The named snapshots (vmsnap(1)): qcow2 headers, a table where they count some.
        static let snapshots = Parts(rawValue: 1 << 10)

        /// What `-j` prints.
        static let json: Parts = [.general, .details, .missingChildren, .drives, .imageJSON, .modules, .snapshots]

        /// What the text sections print.
        static func text(_ sections: [VMInfoCommand.Section], long: Bool) -> Parts {
            var parts: Parts = []
            for section in sections {
                switch section {
                case .info: parts.formUnion(long ? [.general, .access, .details, .usage, .snapshots] : [.general, .access, .snapshots])
                case .tree: parts.insert(.tree)
                case .settings: break
                case .backend: parts.formUnion(long ? [.drives, .imageText] : [.drives])
                case .modules: parts.insert(.modules)
                }
            }
            return parts
        }
    }

    /// A message the text shows after `?` and the JSON as an `error` object.
    struct Failure: Error {
        var message: String
        init(_ error: any Error) { message = "\(error)" }
    }

    /// A running VM: its process (pid, user, accelerator, figures, rates
    /// when sampled) and what it was asked.
    struct Running {
        var process: QemuProcess
        /// With `.details`: the display (its real VNC port) and the QMP socket.
        var display: String?
        var monitor: String?
        /// nil: QEMU has forwards but did not answer; empty without forwards.
        var forwards: [LiveForward]?
        /// The ssh command, when a forward reaches port 22 and vmup wrote ssh.config.
        var ssh: String?
        var guestAgent: GuestAgentStatus
        /// With `.access`: what `vm_display_password=auto` generated for this run.
        var displayPassword: String?
    }

    /// A host USB device passed to the guest, and its node now.
    struct USB {
        var setting: String
        var device: String
        /// nil: not plugged in.
        var node: String?
    }

    /// `vm_firmware`, the CODE image its descriptor names, the variable
    /// store if it exists (nil for both with BIOS).
    struct Firmware {
        var value: Result<VMSettings.Firmware, VMToolsError>
        var code: String?
        var vars: String?
    }

    struct Drive {
        var slot: SettingsDocument.Slot
        var backend: String
        /// `raw`, `nbd`… of `nbd:host:port`; nil for a plain path.
        var mode: String?
        var remote: Bool
        /// A local image: a backend given, not remote.
        var image: Image?

        /// `hdd1`, `cdrom2`: the slot as JSON names it.
        var name: String {
            switch slot {
            case let .hdd(n): return "hdd\(n)"
            case let .cdrom(n): return "cdrom\(n)"
            }
        }
    }

    struct Image {
        var path: String
        var exists: Bool
        /// `DiskImageKind.describe`: what the file is.
        var description: String
        var files: ImageFiles
        /// `qemu-img info --backing-chain`, as text; nil when not asked or the image is missing.
        var text: [String]?
        /// The same as JSON, or qemu-img's error; nil when not asked or not a regular file.
        var json: Result<JSON, VMToolsError>?
    }

    /// The files a qcow2 disk reads besides itself that vm.settings(5) HOST
    /// PATHS checks: its external data files and the backing files outside
    /// the VM's tree (its home and its linked ancestors' homes).
    struct ImageFiles {
        var dataFiles: [(path: String, inTree: Bool)] = []
        var outsideBacking: [String] = []
    }

    struct TreeNode {
        var home: String
        var name: String
        var status: String
        var children: [TreeNode]
    }

    /// Identity, settings with their provenance, parent, ancestors, templates.
    let vm: ResolvedVM
    let configFiles: [String]
    let pidName: String
    /// With `.general`; nil for a stopped VM.
    var running: Running?
    /// With `.details`; empty when unreadable (run reports that).
    var children: ChildList?
    var missingChildren: [String] = []
    /// With `.usage`: KiB in the regular files directly in the home.
    var diskUsageKB: Int?
    /// With `.access`.
    var shares: Result<[Share], Failure>?
    /// With `.general`.
    var usb: Result<[USB], Failure>?
    var firmware: Firmware?
    var tpm: Result<VMSettings.TPM, Failure>?
    /// With `.snapshots`: oldest first.
    var snapshots: Result<[Snapshot], Failure>?
    /// With `.tree`: the whole tree from the topmost ancestor.
    var tree: TreeNode?
    /// With `.drives`: the enabled drives, HDDs first.
    var drives: [Drive] = []
    /// The catalog entry the VM was made from (vm.settings(5), IMAGES BY
    /// NAME): settings, so it costs no read.
    var image: ImageOrigin? { VMSettings(vm.settings).imageOrigin }
    /// With `.modules`: each category's modules in the order they run.
    var modules: [(ModuleCategory, Result<[ModuleChoice], VMToolsError>)] = []

    /// `sampled` is the process run() sampled and asked once for all VMs;
    /// otherwise the running state is read here.
    init(_ vm: ResolvedVM, parts: Parts, sampled: QemuProcess?, global: GlobalConfig, environment: [String: String]) {
        self.vm = vm
        configFiles = global.files
        pidName = global.fileNames.pid
        if parts.contains(.general), let p = sampled ?? RunningState.process(home: vm.home, global: global) {
            running = Self.running(vm, p, parts: parts)
        }
        if parts.contains(.details) || parts.contains(.missingChildren) {
            let list = (try? ChildList.read(home: vm.home, global: global)) ?? ChildList()
            children = list
            if parts.contains(.missingChildren) { missingChildren = list.missing(global: global) }
        }
        if parts.contains(.usage) { diskUsageKB = Self.diskUsageKB(vm.home) }
        if parts.contains(.access) {
            shares = Result { try VMSettings(vm.settings).shares(home: vm.home, environment: environment) }.mapError(Failure.init)
        }
        if parts.contains(.general) {
            let host = USBHost(environment: environment)
            usb = Result {
                try VMSettings(vm.settings).usbDevices().map { id, device in
                    USB(setting: SettingKey.usbDevice(id), device: device.description, node: host.find(device)?.node)
                }
            }.mapError(Failure.init)
            firmware = Self.firmware(vm, environment: environment)
            tpm = Result { try VMSettings(vm.settings).tpm() }.mapError(Failure.init)
        }
        if parts.contains(.snapshots) { snapshots = Self.snapshots(vm, environment: environment) }
        if parts.contains(.tree) { tree = Self.tree(of: vm, global: global, environment: environment) }
        if parts.contains(.drives) { drives = Self.drives(vm, parts: parts, global: global, environment: environment) }
        if parts.contains(.modules) { modules = ModuleRegistry.all(vm.settings, paths: global.paths) }
    }

    static func running(_ vm: ResolvedVM, _ p: QemuProcess, parts: Parts) -> Running {
        let details = parts.contains(.details)
        let forwards = p.liveForwards(home: vm.home)
        var r = Running(process: p, display: details ? p.liveDisplay(home: vm.home) : nil, monitor: details ? p.monitorSocket(home: vm.home) : nil,
                        forwards: forwards, ssh: forwards.flatMap { sshCommand(vm, $0) }, guestAgent: p.guestAgent(home: vm.home))
        if parts.contains(.access) { r.displayPassword = displayPassword(home: vm.home) }
        return r
    }

    static func sshCommand(_ vm: ResolvedVM, _ forwards: [LiveForward]) -> String? {
        guard forwards.contains(where: { $0.proto == "tcp" && $0.guestPort == 22 }),
              FileSystem.isRegularFile(vm.home.appendingPathComponent(SSHConfig.fileName)) else { return nil }
        return SSHConfig.command(home: vm.home, name: vm.name)
    }

    static func displayPassword(home: String) -> String? {
        try? FileSystem.readTextIfExists(home.appendingPathComponent(VMFileNames.displayPassword), limit: 64)
    }

    static func firmware(_ vm: ResolvedVM, environment: [String: String]) -> Firmware {
        let settings = VMSettings(vm.settings)
        do {
            let value = try settings.firmware()
            guard value != .bios else { return Firmware(value: .success(value)) }
            let fw = FirmwareDescriptor.choose(value, architecture: (try? settings.qemuArch()) ?? "x86_64", environment: environment)
            let store = vm.home.appendingPathComponent(VMFileNames.firmwareVars)
            return Firmware(value: .success(value), code: fw?.code, vars: FileSystem.lexists(store) ? store : nil)
        } catch let e as VMToolsError {
            return Firmware(value: .failure(e))
        } catch {
            return Firmware(value: .failure(VMToolsError(.failure, SettingKey.firmware, "\(error)")))
        }
    }

    /// Space used by the regular files directly in the home (not sub-directories,
    /// not images stored elsewhere), in KiB.
    static func diskUsageKB(_ home: String) -> Int {
        var total = 0
        for name in (try? FileSystem.listDirectory(home)) ?? [] {
            var st = stat()
            if lstat(home.appendingPathComponent(name), &st) == 0, (st.st_mode & S_IFMT) == S_IFREG {
                total += Int(st.st_blocks) * 512
            }
        }
        return total / 1024
    }

    static func tree(of vm: ResolvedVM, global: GlobalConfig, environment: [String: String]) -> TreeNode {
        let limit = global.typed.nestingLimit
        var visited: Set<String> = []
        func node(_ home: String, depth: Int) -> TreeNode {
            visited.insert(home)
            var status = ""
            if home == vm.home { status += "*" }
            if RunningState.process(home: home, global: global) != nil { status += "R" }
            var name = home.lastPathComponent
            let settings = global.settingsPath(in: home)
            if let file = try? VMSettingsFile.read(settings) {
                if let n = file.value(SettingKey.name), !n.isEmpty { name = n }
                if hasSnapshots(home: home, file: file, environment: environment) { status += "S" }
            } else {
                status += "?"
            }
            var children: [TreeNode] = []
            if depth < limit, let list = try? ChildList.read(home: home, global: global) {
                for child in list.children where !visited.contains(child) {
                    children.append(node(child, depth: depth + 1))
                }
            }
            return TreeNode(home: home, name: name, status: status.isEmpty ? "-" : status, children: children)
        }
        return node(vm.ancestors.last ?? vm.home, depth: 0)
    }

    /// Enabled drives: HDD 1, HDD 2, CD-ROM 1, CD-ROM 2 (and any further slot).
    static func drives(_ vm: ResolvedVM, parts: Parts, global: GlobalConfig, environment: [String: String]) -> [Drive] {
        var slots: Set<SettingsDocument.Slot> = [.hdd(1), .hdd(2), .cdrom(1), .cdrom(2)]
        for name in vm.settings.names { if let s = SettingsDocument.Slot(setting: name) { slots.insert(s) } }
        return slots.sorted().compactMap { slot in
            let key: SettingKey.DriveKeys
            switch slot {
            case let .hdd(n): key = SettingKey.hdd(n)
            case let .cdrom(n): key = SettingKey.cdrom(n)
            }
            guard vm.settings.isYes(key.enable) else { return nil }
            let backend = vm.settings.value(key.backend)
            let b = StorageBackend(backend)
            var drive = Drive(slot: slot, backend: backend, mode: b.prefix, remote: b.isRemote)
            if !backend.isEmpty, !b.isRemote {
                drive.image = image(b.path(home: vm.home, environment: environment), vm, parts: parts, global: global, environment: environment)
            }
            return drive
        }
    }

    static func image(_ path: String, _ vm: ResolvedVM, parts: Parts, global: GlobalConfig, environment: [String: String]) -> Image {
        let exists = FileSystem.exists(path)
        var image = Image(path: path, exists: exists, description: DiskImageKind.describe(path), files: imageFiles(path, vm, global: global))
        if parts.contains(.imageText), exists { image.text = qemuImgText(path, environment: environment) }
        if parts.contains(.imageJSON), FileSystem.isRegularFile(path) {
            do {
                image.json = .success(try QemuImg.info(path, backingChain: true, environment: environment))
            } catch let e as VMToolsError {
                image.json = .failure(e)
            } catch {}
        }
        return image
    }

    static func imageFiles(_ path: String, _ vm: ResolvedVM, global: GlobalConfig) -> ImageFiles {
        guard FileSystem.isRegularFile(path) else { return ImageFiles() }
        let trees = (try? HostPathPolicy(vm: vm, global: global, environment: [:]))?.trees ?? [vm.home]
        func isInTree(_ path: String) -> Bool { trees.contains { FileSystem.isWithin(FileSystem.realPath(path) ?? path, $0) } }
        let chain = ImageFormat.qcow2BackingChain(path)
        return ImageFiles(dataFiles: ([path] + chain).compactMap(ImageFormat.qcow2DataFile).map { ($0, isInTree($0)) },
                          outsideBacking: chain.filter { !isInTree($0) })
    }

    static func qemuImgText(_ path: String, environment: [String: String]) -> [String] {
        guard let exe = Subprocess.which("qemu-img", path: environment["PATH"]) else {
            return ["(qemu-img is not installed: no image details)"]
        }
        guard let r = try? Subprocess(exe, ["info", "--backing-chain", "-U", "--", path]).run() else { return [] }
        let text = (r.status == 0 ? r.stdoutText : r.stderrText).trimmingTrailingWhitespace()
        return text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }
}
