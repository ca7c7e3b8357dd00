import VMToolsCore
import VMToolsQEMU
import VMToolsLaunch

#if canImport(Glibc)
import Glibc
#endif

/// `vminfo`: report on VMs (vminfo(1)), plus `-p` (where each setting
/// comes from) and `-j` (everything as JSON). Read-only: no lock, no change.
public enum VMInfoCommand: Command {
    public static let spec = CommandSpec(
        name: "vminfo",
        summary: "report on virtual machines: state, fork tree, settings and disks",
        options: [
            OptionSpec("a", "draw the tree with ASCII characters"),
            OptionSpec("b", "storage backend section"),
            OptionSpec("i", "general information section"),
            OptionSpec("j", "print everything as JSON (settings with their origin, parent, children, disks, state)"),
            OptionSpec("l", "long output: more detail in each section"),
            OptionSpec("L", "print a libvirt domain definition (XML) of each VM; what libvirt cannot express is noted on stderr"),
            OptionSpec("m", "modules section: which implementation (built-in or file) each module has, in order"),
            OptionSpec("p", "show where each setting comes from (file and line, template, default)"),
            OptionSpec("s", "settings section"),
            OptionSpec("t", "fork tree section"),
            OptionSpec("y", "assume yes (accepted, no effect)"),
        ],
        operands: "[vmhome ...]",
        operandCompletion: .home,
        exitCodes: [(0, "every VM was reported"), (1, "a VM could not be loaded, or a running VM's guest agent or QMP answered badly"), (2, "wrong usage")]
    )

    enum Section: Character, CaseIterable {
        case info = "i", tree = "t", settings = "s", backend = "b", modules = "m"

        var title: String {
            switch self {
            case .info: return "General information (-i)"
            case .tree: return "Hierarchy tree (-t)"
            case .settings: return "Settings (-s)"
            case .backend: return "Storage backend (-b)"
            case .modules: return "Modules (-m)"
            }
        }
    }

    /// What the command line asks for (vminfo(1)); `-y` is accepted and ignored.
    struct Options {
        /// In command-line order; the four main ones when none is named.
        var sections: [Section]
        var json: Bool
        var libvirt: Bool
        var long: Bool
        var ascii: Bool
        var provenance: Bool
        /// Sample running VMs' live figures (vminfo(1) LIVE FIGURES): for the
        /// general information section, or `-j` with `-i` named; `-t` and
        /// scripts stay fast.
        var live: Bool

        init(_ args: ParsedArguments) {
            let named = args.occurrences(of: String(Section.allCases.map(\.rawValue))).compactMap { Section(rawValue: $0.letter) }
            sections = named.isEmpty ? [.info, .tree, .settings, .backend] : named
            json = args.has("j")
            libvirt = args.has("L")
            long = args.has("l")
            ascii = args.has("a")
            provenance = args.has("p")
            live = !libvirt && (json ? named.contains(.info) : sections.contains(.info))
        }
    }

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        let options = Options(args)
        let (global, resolver) = try context.loadGlobal(args)
        let sections = options.sections
        let console = context.console
        let operands = args.operands.isEmpty ? ["."] : args.operands
        var failed = false
        var documents: [JSON] = []
        var loaded: [(operand: String, vm: Result<ResolvedVM, VMToolsError>)] = []
        for operand in operands {
            do {
                let home = try VMHome.locate(operand, cwd: context.cwd, global: global)
                loaded.append((operand, .success(try resolver.loadVM(home: home, global: global))))
            } catch let e as VMToolsError {
                loaded.append((operand, .failure(e)))
            }
        }
        // One interval for all the running VMs, none for a stopped one; and
        // their guest agents asked at once (silent ones cost a second in all).
        var sampled: [String: QemuProcess] = [:]
        if !options.libvirt && (options.json || options.sections.contains(.info)) {
            let homes = loaded.compactMap { try? $0.vm.get().home }
            let running = homes.compactMap { h in RunningState.process(home: h, global: global).map { (home: h, process: $0) } }
            var processes = running.map(\.process)
            if options.live { processes = LiveFigures.sample(processes, pidName: global.fileNames.pid) }
            processes = QemuProcess.askingGuestAgents(processes, homes: running.map(\.home))
            for (k, p) in processes.enumerated() { sampled[running[k].home] = p }
            // A peer's unusable answer is one line; the report goes on (vminfo(1) EXIT STATUS).
            for (k, p) in processes.enumerated() {
                for bad in p.badAnswers {
                    failed = true
                    console.error(VMToolsError(.failure, running[k].home, bad.description))
                }
            }
        }
        for (operand, result) in loaded {
            do {
                let vm = try result.get()
                let home = vm.home
                // An unreadable child list (a FIFO, say) is reported, not taken
                // for an empty one; the rest of the report still helps.
                do { _ = try ChildList.read(home: home, global: global) } catch let e as VMToolsError {
                    failed = true
                    console.error(e)
                }
                if options.libvirt {
                    try printLibvirtDomain(vm, global: global, context: context)
                } else if options.json {
                    documents.append(json(vm, sampled: sampled[home], global: global, context: context))
                } else {
                    report(vm, sampled: sampled[home], sections: sections, options: options, global: global, context: context)
                }
            } catch let e as VMToolsError {
                failed = true
                console.error(e)
                if options.json { documents.append(.object([("operand", .string(operand)), ("error", .string(e.description))])) }
            }
        }
        if options.json { console.printJSON(.array(documents)) }
        return failed ? .failure : .success
    }

    // MARK: Text report

    static func report(_ vm: ResolvedVM, sampled: QemuProcess?, sections: [Section], options: Options, global: GlobalConfig,
                       context: Context) {
        let console = context.console
        let rule = String(repeating: "=", count: 70)
        console.print(rule)
        console.print("= \(vm.home)")
        console.print(rule)
        console.print()
        let running = sampled ?? RunningState.process(home: vm.home, global: global)
        for section in sections {
            let dashes = String(repeating: "-", count: 70)
            console.print(dashes)
            console.print("- \(section.title)")
            console.print(dashes)
            console.print()
            let lines: [String]
            switch section {
            case .info: lines = infoSection(vm, running: running, options: options, global: global, environment: context.environment)
            case .tree: lines = treeSection(vm, options: options, global: global)
            case .settings: lines = settingsSection(vm, options: options)
            case .backend: lines = backendSection(vm, options: options, global: global, context: context)
            case .modules: lines = modulesSection(vm, global: global)
            }
            lines.forEach { console.print($0) }
        }
    }

    /// Each category's modules in the order they run, and where each one
    /// comes from: built-in, or the file that replaces it.
    static func modulesSection(_ vm: ResolvedVM, global: GlobalConfig) -> [String] {
        var lines: [String] = []
        for (category, result) in ModuleRegistry.all(vm.settings, paths: global.paths) {
            lines.append("\(category.rawValue) (\(category == .buildcmd ? "\(SettingKey.modulesBuildcmdList) + \(SettingKey.modulesBuildcmd)" : category.listSetting)):")
            switch result {
            case let .success(list):
                let width = list.map(\.name.count).max() ?? 0
                for m in list {
                    lines.append("  " + m.name.leftPadded(to: width) + "  " + m.describedSource)
                    for i in m.ignored { lines.append("  " + String(repeating: " ", count: width) + "  (ignored \(i.path): \(i.why))") }
                }
            case let .failure(e):
                lines.append("  ERROR: \(e.description)")
            }
            lines.append("")
        }
        return lines
    }

    static func infoSection(_ vm: ResolvedVM, running: QemuProcess?, options: Options, global: GlobalConfig,
                            environment: [String: String]) -> [String] {
        let children = (try? ChildList.read(home: vm.home, global: global).children.count) ?? 0
        let state = running.map { "RUNNING (PID \($0.pid))" } ?? "not running"
        var lines: [String] = []
        if options.long {
            lines.append("Name: \(vm.name.escapingControlCharacters.leftPadded(to: 22))  Parent: \(vm.parent == nil ? 0 : 1)")
            lines.append("State: \(state.leftPadded(to: 21))  Childs: \(children)")
            lines.append("Display: \(running?.liveDisplay(home: vm.home) ?? "")")
            lines.append("Monitor: \(running?.monitorSocket(home: vm.home) ?? "")")
            lines.append("User: \(running?.user ?? "")")
            lines.append("Accel: \(running?.accelerator ?? "")")
            lines.append("")
            let mem = running.map { Formatting.size(kilobytes: $0.vszKB) } ?? ""
            let cpu = running.map { Formatting.twoDecimals($0.cpuPercent) + " %" } ?? ""
            lines.append("Mem: \(mem.leftPadded(to: 15))CPU: \(cpu.leftPadded(to: 15))Disk: \(Formatting.size(kilobytes: diskUsageKB(vm.home)))")
        } else {
            lines.append("Name: \(vm.name)")
            lines.append("State: \(state)")
        }
        if let running {
            if running.rates != nil { lines += LiveFigures.lines(running) }
            lines += reachLines(vm, running)
            lines.append(guestAgentLine(running.guestAgent(home: vm.home)))
        }
        if running != nil, let password = displayPassword(home: vm.home) { lines.append("Display password: \(password.escapingControlCharacters)") }
        lines += shareLines(vm, environment: environment)
        lines += usbLines(vm, environment: environment)
        lines += firmwareLines(vm, environment: environment)
        lines += tpmLines(vm)
        lines.append("")
        return lines
    }

    /// The firmware (vm.settings(5), FIRMWARE): its value, the CODE image a
    /// start takes and the variable store; no line for BIOS, as before UEFI.
    static func firmwareLines(_ vm: ResolvedVM, environment: [String: String]) -> [String] {
        let f = firmware(vm, environment: environment)
        switch f.value {
        case .failure(let e): return ["Firmware: ? (\("\(e)".escapingControlCharacters))"]
        case .success(.bios): return []
        case .success(let value):
            guard let code = f.code else { return ["Firmware: \(value.rawValue) (no firmware descriptor fits; Debian: apt-get install ovmf)"] }
            let vars = f.vars.map { "variables \($0.lastPathComponent)" } ?? "variables made on the first start"
            return ["Firmware: \(value.rawValue) (\(code.lastPathComponent.escapingControlCharacters), \(vars.escapingControlCharacters))"]
        }
    }

    /// `vm_firmware`, the CODE image its descriptor names, the store if it exists.
    static func firmware(_ vm: ResolvedVM, environment: [String: String]) -> (value: Result<VMSettings.Firmware, VMToolsError>, code: String?, vars: String?) {
        let settings = VMSettings(vm.settings)
        do {
            let value = try settings.firmware()
            guard value != .bios else { return (.success(value), nil, nil) }
            let fw = FirmwareDescriptor.choose(value, architecture: (try? settings.qemuArch()) ?? "x86_64", environment: environment)
            let store = vm.home.appendingPathComponent(VMFileNames.firmwareVars)
            return (.success(value), fw?.code, FileSystem.lexists(store) ? store : nil)
        } catch let e as VMToolsError {
            return (.failure(e), nil, nil)
        } catch {
            return (.failure(VMToolsError(.failure, SettingKey.firmware, "\(error)")), nil, nil)
        }
    }

    /// `firmware`, `firmware_code` and `firmware_vars` of vminfo -j.
    static func firmwareJSON(_ vm: ResolvedVM, environment: [String: String]) -> [(String, JSON)] {
        let f = firmware(vm, environment: environment)
        switch f.value {
        case .failure(let e): return [("firmware", .object([("error", .string(e.description))])), ("firmware_code", .null), ("firmware_vars", .null)]
        case .success(let value): return [("firmware", .string(value.rawValue)), ("firmware_code", .string(f.code)), ("firmware_vars", .string(f.vars))]
        }
    }

    /// Each host USB device passed to the guest and where it is plugged in
    /// now (vminfo(1)).
    static func usbLines(_ vm: ResolvedVM, environment: [String: String]) -> [String] {
        do {
            let host = USBHost(environment: environment)
            return try VMSettings(vm.settings).usbDevices().map { id, device in
                let node = host.find(device).map { "at \($0.node)" } ?? "not plugged in"
                return "USB: \(device.description) (\(SettingKey.usbDevice(id))): \(node.escapingControlCharacters)"
            }
        } catch {
            return ["USB: ? (\("\(error)".escapingControlCharacters))"]
        }
    }

    /// The emulated TPM, when the VM has one (vminfo(1)).
    static func tpmLines(_ vm: ResolvedVM) -> [String] {
        do {
            guard try VMSettings(vm.settings).tpm() == .v2 else { return [] }
            return ["TPM: 2.0 (swtpm, state in \(VMFileNames.tpmDirectory)/)"]
        } catch {
            return ["TPM: ? (\("\(error)".escapingControlCharacters))"]
        }
    }

    /// `tpm` of vminfo -j: `none` or `2.0`, or an `error` object.
    static func tpmJSON(_ vm: ResolvedVM) -> JSON {
        do {
            return .string(try VMSettings(vm.settings).tpm().rawValue)
        } catch {
            return .object([("error", .string("\(error)"))])
        }
    }

    /// `usb_devices` of vminfo -j: as usbLines, or an `error` object.
    static func usbJSON(_ vm: ResolvedVM, environment: [String: String]) -> JSON {
        do {
            let host = USBHost(environment: environment)
            return .array(try VMSettings(vm.settings).usbDevices().map { id, device in
                .object([("setting", .string(SettingKey.usbDevice(id))), ("device", .string(device.description)),
                         ("node", host.find(device).map { .string($0.node) } ?? .null)])
            })
        } catch {
            return .object([("error", .string("\(error)"))])
        }
    }

    /// The password `vm_display_password=auto` generated for this run
    /// (vminfo(1)); nil when there is none.
    static func displayPassword(home: String?) -> String? {
        guard let home, let text = try? FileSystem.readTextIfExists(home.appendingPathComponent(VMFileNames.displayPassword), limit: 64) else { return nil }
        return text
    }

    /// Each shared folder and the command that mounts it in a guest without
    /// cloud-init (vminfo(1)).
    static func shareLines(_ vm: ResolvedVM, environment: [String: String]) -> [String] {
        do {
            return try VMSettings(vm.settings).shares(home: vm.home, environment: environment).map {
                "Share: \($0.tag) \($0.path.escapingControlCharacters) (\($0.mode.rawValue)): \($0.mountCommand)"
            }
        } catch {
            return ["Share: ? (\("\(error)".escapingControlCharacters))"]
        }
    }

    /// A running VM's forwards with their real ports, and the ssh line
    /// when vmup wrote its ssh.config (vminfo(1)).
    static func reachLines(_ vm: ResolvedVM, _ running: QemuProcess) -> [String] {
        guard running.hasForwards else { return [] }
        guard let forwards = running.liveForwards(home: vm.home) else { return ["Forward: ? (QEMU does not answer)"] }
        var lines = forwards.map { "Forward: \($0.description)" }
        if let line = sshLine(vm, forwards) { lines.append("SSH: \(line)") }
        return lines
    }

    /// The guest's addresses from its agent, or why there are none
    /// (vminfo(1), vm.settings(5) GUEST AGENT).
    static func guestAgentLine(_ status: GuestAgentStatus) -> String {
        switch status {
        case .noChannel: return "Guest agent: no agent channel (\(SettingKey.guestAgentEnable)=yes adds one at the next start)"
        case .notAnswering: return "Guest agent: not answering (install qemu-guest-agent in the guest)"
        case .badAnswer: return "Guest agent: gave an answer vmtools cannot use (reported on stderr)"
        case .answering(let list) where list.isEmpty: return "Guest addresses: none"
        case .answering: return "Guest addresses: \(status.addressesText.escapingControlCharacters)"
        }
    }

    static func sshLine(_ vm: ResolvedVM, _ forwards: [LiveForward]) -> String? {
        guard forwards.contains(where: { $0.proto == "tcp" && $0.guestPort == 22 }),
              FileSystem.isRegularFile(vm.home.appendingPathComponent(SSHConfig.fileName)) else { return nil }
        return SSHConfig.command(home: vm.home, name: vm.name)
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

    // MARK: Tree

    struct TreeNode {
        var home: String
        var name: String
        var status: String
        var children: [TreeNode]
    }

    static func tree(of vm: ResolvedVM, global: GlobalConfig) -> TreeNode {
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

    static func treeSection(_ vm: ResolvedVM, options: Options, global: GlobalConfig) -> [String] {
        let (branch, last, pipe) = options.ascii ? ("+- ", "`- ", "|  ") : ("├─ ", "└─ ", "│  ")
        var rows: [[String]] = []
        func walk(_ n: TreeNode, lead: String, own: String) {
            rows.append([own + n.name, n.status] + (options.long ? [n.home] : []))
            for (k, child) in n.children.enumerated() {
                let isLast = k == n.children.count - 1
                walk(child, lead: lead + (isLast ? "   " : pipe), own: lead + (isLast ? last : branch))
            }
        }
        walk(tree(of: vm, global: global), lead: "", own: "")
        return Formatting.table(rows) + ["", "(*: Current    R: Running    ?: Error)", ""]
    }

    // MARK: Settings

    static func settingsSection(_ vm: ResolvedVM, options: Options) -> [String] {
        func lines(_ names: [String]) -> [String] {
            let cells = names.map { "\($0)=\(ExtendedString.encode(vm.settings.value($0)))" }
            guard options.provenance else { return cells.map { "     " + $0 } }
            // Aligned, but one very long value must not push every comment off screen.
            let width = min(cells.map(\.displayWidth).max() ?? 0, 48)
            return zip(names, cells).map { name, cell in
                "     " + cell.leftPadded(to: width) + "  # " + (vm.settings.provenance(name)?.description ?? "")
            }
        }
        var out: [String] = []
        if options.long {
            out += ["* vmtools settings:", ""] + lines(vm.settings.names(withPrefix: "cfg_")) + [""]
            out += ["* Virtual machine settings:", ""] + lines(vm.settings.names(withPrefix: "vm_")) + [""]
        } else {
            let own = vm.settings.names.filter { name in
                guard SettingKey.isRecorded(name) else { return false }
                switch vm.settings.provenance(name) {
                case .vmFile?, .template?: return true
                default: return false
                }
            }
            out += ["* Virtual machine settings:", ""] + lines(own) + [""]
        }
        return out
    }

    // MARK: Storage

    struct Drive {
        var slot: SettingsDocument.Slot
        var key: String
        var backend: String
        /// `hdd1`, `cdrom2`: the slot as JSON names it.
        var name: String {
            switch slot {
            case let .hdd(n): return "hdd\(n)"
            case let .cdrom(n): return "cdrom\(n)"
            }
        }
    }

    /// Enabled drives: HDD 1, HDD 2, CD-ROM 1, CD-ROM 2 (and any further slot).
    static func drives(_ vm: ResolvedVM) -> [Drive] {
        var slots: Set<SettingsDocument.Slot> = [.hdd(1), .hdd(2), .cdrom(1), .cdrom(2)]
        for name in vm.settings.names { if let s = SettingsDocument.Slot(setting: name) { slots.insert(s) } }
        return slots.sorted().compactMap { slot in
            let key: SettingKey.DriveKeys
            switch slot {
            case let .hdd(n): key = SettingKey.hdd(n)
            case let .cdrom(n): key = SettingKey.cdrom(n)
            }
            guard vm.settings.isYes(key.enable) else { return nil }
            return Drive(slot: slot, key: key.prefix, backend: vm.settings.value(key.backend))
        }
    }

    static func backendSection(_ vm: ResolvedVM, options: Options, global: GlobalConfig, context: Context) -> [String] {
        var out: [String] = []
        for d in drives(vm) {
            guard !d.backend.isEmpty else {
                out += ["* \(d.slot.title): Drive enabled, but no backend file selected.", ""]
                continue
            }
            out.append("* \(d.slot.title): \(d.backend)")
            let b = StorageBackend(d.backend)
            if !b.isRemote {
                let path = b.path(home: vm.home, environment: context.environment)
                out += ["", DiskImageKind.describe(path)]
                let files = imageFiles(path, vm, global: global)
                out += files.dataFiles.map { "Data file: \($0)" + (files.isInTree($0) ? "" : " (outside the VM's tree)") }
                out += files.outsideBacking.map { "Backing file outside the VM's tree: \($0)" }
                if options.long, FileSystem.isRegularFile(path) || FileSystem.exists(path) {
                    out.append("")
                    out += qemuImgText(path, context: context)
                }
            }
            out.append("")
        }
        return out
    }

    /// The files a qcow2 disk reads besides itself that vm.settings(5) HOST
    /// PATHS checks: its external data files and the backing files outside
    /// the VM's tree (its home and its linked ancestors' homes).
    struct ImageFiles {
        var trees: [String]
        var dataFiles: [String] = []
        var outsideBacking: [String] = []
        func isInTree(_ path: String) -> Bool { trees.contains { FileSystem.isWithin(FileSystem.realPath(path) ?? path, $0) } }
    }

    static func imageFiles(_ path: String, _ vm: ResolvedVM, global: GlobalConfig) -> ImageFiles {
        var files = ImageFiles(trees: (try? HostPathPolicy(vm: vm, global: global, environment: [:]))?.trees ?? [vm.home])
        guard FileSystem.isRegularFile(path) else { return files }
        let chain = ImageFormat.qcow2BackingChain(path)
        files.dataFiles = ([path] + chain).compactMap(ImageFormat.qcow2DataFile)
        files.outsideBacking = chain.filter { !files.isInTree($0) }
        return files
    }

    static func qemuImgText(_ path: String, context: Context) -> [String] {
        guard let exe = Subprocess.which("qemu-img", path: context.environment["PATH"]) else {
            return ["(qemu-img is not installed: no image details)"]
        }
        guard let r = try? Subprocess(exe, ["info", "--backing-chain", "-U", "--", path]).run() else { return [] }
        let text = (r.status == 0 ? r.stdoutText : r.stderrText).trimmingTrailingWhitespace()
        return text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    // MARK: JSON

    static func json(_ vm: ResolvedVM, sampled: QemuProcess?, global: GlobalConfig, context: Context) -> JSON {
        let running = sampled ?? RunningState.process(home: vm.home, global: global)
        let children = (try? ChildList.read(home: vm.home, global: global)) ?? ChildList()
        var state: [(String, JSON)] = [("running", .bool(running != nil)), ("pid", running.map { .number(Double($0.pid)) } ?? .null)]
        if let p = running {
            state += [("accelerator", .string(p.accelerator)), ("display", .string(p.liveDisplay(home: vm.home))), ("monitor", .string(p.monitorSocket(home: vm.home))),
                      ("user", .string(p.user)), ("memory_kb", .number(Double(p.vszKB))),
                      ("cpu_percent", .number((p.cpuPercent * 100).rounded() / 100))]
            let forwards = p.liveForwards(home: vm.home)
            state += [("forwards", forwards.map { .array($0.map(\.json)) } ?? .null),
                      ("ssh", forwards.flatMap { sshLine(vm, $0) }.map { .string($0) } ?? .null)]
            let agent = p.guestAgent(home: vm.home)
            state += [("guest_agent", .string(agent.jsonName)), ("guest_addresses", agent.addressesJSON)]
            if p.rates != nil { state.append(("live", LiveFigures.json(p, pidName: global.fileNames.pid))) }
        }
        func origin(_ p: Provenance) -> [(String, JSON)] {
            var o: [(String, JSON)] = [("source", .string(p.layer))]
            switch p {
            case let .config(_, path, line), let .vmFile(path, line, _):
                o += [("file", .string(path)), ("line", .number(Double(line)))]
            case let .template(name, path, line):
                o += [("template", .string(name)), ("file", .string(path)), ("line", .number(Double(line)))]
            case let .commandLine(flag): o.append(("option", .string(flag)))
            case .builtin, .derived: break
            }
            return o
        }
        let settings: [(String, JSON)] = vm.settings.names.map { name in
            let e = vm.settings.entries[name]!
            var fields: [(String, JSON)] = [("value", .string(e.value))] + origin(e.provenance)
            if !e.overridden.isEmpty {
                fields.append(("overrides", .array(e.overridden.map { .object([("value", .string($0.value))] + origin($0.provenance)) })))
            }
            return (name, .object(fields))
        }
        let disks: [JSON] = drives(vm).map { d in
            var fields: [(String, JSON)] = [("slot", .string(d.name)),
                                            ("backend", .string(d.backend))]
            let b = StorageBackend(d.backend)
            fields += [("mode", .string(b.prefix)), ("remote", .bool(b.isRemote))]
            if !d.backend.isEmpty, !b.isRemote {
                let path = b.path(home: vm.home, environment: context.environment)
                let files = imageFiles(path, vm, global: global)
                fields += [("path", .string(path)), ("exists", .bool(FileSystem.exists(path))),
                           ("description", .string(DiskImageKind.describe(path))),
                           ("data_files", .array(files.dataFiles.map { .object([("path", .string($0)), ("in_tree", .bool(files.isInTree($0)))]) })),
                           ("outside_backing_files", .array(files.outsideBacking.map { .string($0) }))]
                if FileSystem.isRegularFile(path) {
                    do {
                        fields.append(("image", try QemuImg.info(path, backingChain: true, environment: context.environment)))
                    } catch let e as VMToolsError {
                        fields.append(("image_error", .string(e.description)))
                    } catch {}
                }
            }
            return .object(fields)
        }
        return .object([
            ("home", .string(vm.home)),
            ("name", .string(vm.name)),
            ("settings_file", .string(vm.settingsPath)),
            ("state", .object(state)),
            ("parent", .string(vm.parent)),
            ("ancestors", .array(vm.ancestors.map { .string($0) })),
            ("children", .array(children.children.map { .string($0) })),
            ("missing_children", .array(children.missing(global: global).map { .string($0) })),
            ("templates", .array(vm.templates.map { .string($0) })),
            ("modules", .object(ModuleRegistry.all(vm.settings, paths: global.paths).map { category, result in
                switch result {
                case let .success(list):
                    return (category.rawValue, .array(list.map { m in
                        .object([("name", .string(m.name)), ("file", .string(m.file)),
                                 ("ignored", .array(m.ignored.map { .object([("file", .string($0.path)), ("why", .string($0.why))]) }))])
                    }))
                case let .failure(e):
                    return (category.rawValue, .object([("error", .string(e.description))]))
                }
            })),
            ("config_files", .array(global.files.map { .string($0) })),
            ("settings", .object(settings)),
            ("disks", .array(disks)),
            ("usb_devices", usbJSON(vm, environment: context.environment)),
            ("tpm", tpmJSON(vm)),
        ] + firmwareJSON(vm, environment: context.environment))
    }
}
