import VMToolsCore
import VMToolsQEMU
import VMToolsLaunch

/// The text sections of vminfo(1), rendered from the report alone.
extension VMReport {
    /// The lines of one section, unescaped except where a value is set
    /// in a padded column (Console.print escapes the rest).
    func lines(_ section: VMInfoCommand.Section, _ options: VMInfoCommand.Options) -> [String] {
        switch section {
        case .info: return infoLines(long: options.long)
        case .tree: return treeLines(ascii: options.ascii, long: options.long)
        case .settings: return settingsLines(long: options.long, provenance: options.provenance)
        case .backend: return backendLines()
        case .modules: return moduleLines()
        }
    }

    func infoLines(long: Bool) -> [String] {
        let state = running.map { "RUNNING (PID \($0.process.pid))" } ?? "not running"
        var lines: [String] = []
        if long {
            let p = running?.process
            lines.append("Name: \(vm.name.escapingControlCharacters.leftPadded(to: 22))  Parent: \(vm.parent == nil ? 0 : 1)")
            lines.append("State: \(state.leftPadded(to: 21))  Childs: \(children?.children.count ?? 0)")
            lines.append("Display: \(running?.display ?? "")")
            lines.append("Monitor: \(running?.monitor ?? "")")
            lines.append("User: \(p?.user ?? "")")
            lines.append("Accel: \(p?.accelerator ?? "")")
            lines.append("")
            let mem = p.map { Formatting.size(kilobytes: $0.vszKB) } ?? ""
            let cpu = p.map { Formatting.twoDecimals($0.cpuPercent) + " %" } ?? ""
            lines.append("Mem: \(mem.leftPadded(to: 15))CPU: \(cpu.leftPadded(to: 15))Disk: \(Formatting.size(kilobytes: diskUsageKB ?? 0))")
        } else {
            lines.append("Name: \(vm.name)")
            lines.append("State: \(state)")
        }
        if let running {
            if running.process.rates != nil { lines += LiveFigures.lines(running.process) }
            lines += reachLines(running)
            lines.append(VMInfoCommand.guestAgentLine(running.guestAgent))
            if let password = running.displayPassword { lines.append("Display password: \(password.escapingControlCharacters)") }
        }
        lines += shareLines() + usbLines() + firmwareLines() + tpmLines() + snapshotLines() + imageLines()
        lines.append("")
        return lines
    }

    /// The catalog entry the VM was made from, its image's URL and digest (vminfo(1)).
    func imageLines() -> [String] {
        guard let image else { return [] }
        return ["Image: \(image.name) from \(image.url)"] + (image.digest.isEmpty ? [] : ["Image digest: \(image.digest)"])
    }

    /// A running VM's forwards with their real ports, and the ssh line
    /// when vmup wrote its ssh.config (vminfo(1)).
    func reachLines(_ running: Running) -> [String] {
        guard let forwards = running.forwards else { return ["Forward: ? (QEMU does not answer)"] }
        return forwards.map { "Forward: \($0.description)" } + (running.ssh.map { ["SSH: \($0)"] } ?? [])
    }

    /// Each shared folder and the command that mounts it in a guest without
    /// cloud-init (vminfo(1)).
    func shareLines() -> [String] {
        switch shares {
        case nil: return []
        case .success(let list)?:
            return list.map { "Share: \($0.tag) \($0.path.escapingControlCharacters) (\($0.mode.rawValue)): \($0.mountCommand)" }
        case .failure(let f)?: return ["Share: ? (\(f.message.escapingControlCharacters))"]
        }
    }

    /// Each host USB device passed to the guest and where it is plugged in
    /// now (vminfo(1)).
    func usbLines() -> [String] {
        switch usb {
        case nil: return []
        case .success(let list)?:
            return list.map { u in "USB: \(u.device) (\(u.setting)): \((u.node.map { "at \($0)" } ?? "not plugged in").escapingControlCharacters)" }
        case .failure(let f)?: return ["USB: ? (\(f.message.escapingControlCharacters))"]
        }
    }

    /// The firmware (vm.settings(5), FIRMWARE): its value, the CODE image a
    /// start takes and the variable store; no line for BIOS, as before UEFI.
    func firmwareLines() -> [String] {
        guard let firmware else { return [] }
        switch firmware.value {
        case .failure(let e): return ["Firmware: ? (\("\(e)".escapingControlCharacters))"]
        case .success(.bios): return []
        case .success(let value):
            guard let code = firmware.code else { return ["Firmware: \(value.rawValue) (no firmware descriptor fits; Debian: apt-get install ovmf)"] }
            let vars = firmware.vars.map { "variables \($0.lastPathComponent)" } ?? "variables made on the first start"
            return ["Firmware: \(value.rawValue) (\(code.lastPathComponent.escapingControlCharacters), \(vars.escapingControlCharacters))"]
        }
    }

    /// The emulated TPM, when the VM has one (vminfo(1)).
    func tpmLines() -> [String] {
        switch tpm {
        case nil: return []
        case .success(let value)?: return value == .v2 ? ["TPM: 2.0 (swtpm, state in \(VMFileNames.tpmDirectory)/)"] : []
        case .failure(let f)?: return ["TPM: ? (\(f.message.escapingControlCharacters))"]
        }
    }

    func treeLines(ascii: Bool, long: Bool) -> [String] {
        guard let tree else { return [] }
        let (branch, last, pipe) = ascii ? ("+- ", "`- ", "|  ") : ("├─ ", "└─ ", "│  ")
        var rows: [[String]] = []
        func walk(_ n: TreeNode, lead: String, own: String) {
            rows.append([own + n.name, n.status] + (long ? [n.home] : []))
            for (k, child) in n.children.enumerated() {
                let isLast = k == n.children.count - 1
                walk(child, lead: lead + (isLast ? "   " : pipe), own: lead + (isLast ? last : branch))
            }
        }
        walk(tree, lead: "", own: "")
        return Formatting.table(rows) + ["", "(*: Current    R: Running    S: Snapshots    ?: Error)", ""]
    }

    func settingsLines(long: Bool, provenance: Bool) -> [String] {
        func lines(_ names: [String]) -> [String] {
            let cells = names.map { "\($0)=\(ExtendedString.encode(vm.settings.value($0)))" }
            guard provenance else { return cells.map { "     " + $0 } }
            // Aligned, but one very long value must not push every comment off screen.
            let width = min(cells.map(\.displayWidth).max() ?? 0, 48)
            return zip(names, cells).map { name, cell in
                "     " + cell.leftPadded(to: width) + "  # " + (vm.settings.provenance(name)?.description ?? "")
            }
        }
        var out: [String] = []
        if long {
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

    func backendLines() -> [String] {
        var out: [String] = []
        for d in drives {
            guard !d.backend.isEmpty else {
                out += ["* \(d.slot.title): Drive enabled, but no backend file selected.", ""]
                continue
            }
            out.append("* \(d.slot.title): \(d.backend)")
            if let image = d.image {
                out += ["", image.description]
                out += image.files.dataFiles.map { "Data file: \($0.path)" + ($0.inTree ? "" : " (outside the VM's tree)") }
                out += image.files.outsideBacking.map { "Backing file outside the VM's tree: \($0)" }
                if let text = image.text { out += [""] + text }
            }
            out.append("")
        }
        return out
    }

    /// Each category's modules in the order they run, and where each one
    /// comes from: built-in, or the file that replaces it.
    func moduleLines() -> [String] {
        var lines: [String] = []
        for (category, result) in modules {
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
}
