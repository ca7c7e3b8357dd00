import VMToolsCore
import VMToolsQEMU

/// What the exports (`vminfo -L`, `vmcp -a`) describe: the machine a start
/// of the VM would run (`LaunchPlan.machine`), planned in dry run with the
/// built-in buildcmd modules only (vminfo(1), vmcp(1)). A module file is the
/// user's code for a start, not for an export: it is not run, and noted.
package enum ExportPlan {
    /// One setting an export leaves behind, and why.
    package struct Note: Equatable, Sendable {
        package var setting: String
        package var why: String
    }

    /// KVM when the VM asks for it, even where this host lacks it; else what a start here would take.
    package static func accelerator(_ settings: SettingsTable) throws -> Accelerator.Kind {
        try VMSettings(settings).qemuAccel() == .kvm ? .kvm : try Accelerator.choose(settings).kind
    }

    /// The machine of a start of `vm`: nothing written, nothing probed, and
    /// this host's helpers, firmware files and password file not required
    /// (`QemuCommand.export`). Refuses what vmup refuses, naming the setting.
    package static func machine(_ vm: ResolvedVM, accelerator: Accelerator.Kind, global: GlobalConfig,
                                environment: [String: String]) throws -> (machine: Machine, notes: [Note]) {
        var command = QemuCommand(settings: vm.settings, home: vm.home, global: global, environment: environment,
                                  accelerator: Accelerator(kind: accelerator, reason: "exported"), dryRun: true)
        command.export = true
        let ownList = Set(try ModuleRegistry.names(SettingKey.modulesBuildcmd, in: vm.settings))
        var builtIn: [any BuildCmdModule.Type] = []
        var notes: [Note] = []
        for m in try ModuleRegistry.buildcmdModules(vm.settings, paths: global.paths) {
            let setting = ownList.contains(m.name) ? SettingKey.modulesBuildcmd : SettingKey.modulesBuildcmdList
            let module = ModuleRegistry.buildcmd[m.name]
            if let file = m.file {
                notes.append(Note(setting: setting, why: "the module file \(file) is not run for an export"
                                  + (module == nil ? "" : "; the built-in \(m.name) describes that part")))
            }
            if let module { builtIn.append(module) }
        }
        try command.build(builtIn)
        return (command.plan.machine, notes + snapshotNotes(vm, environment: environment))
    }

    /// Named snapshots (vmsnap(1)) are not part of an export: the OVF's
    /// disks are new images, and libvirt keeps snapshots in its own
    /// metadata. Only the images' headers are read for a VM without any.
    static func snapshotNotes(_ vm: ResolvedVM, environment: [String: String]) -> [Note] {
        guard let list = try? VMSnapshots(vm, environment: environment).listIfAny(), !list.isEmpty else { return [] }
        let what = list.count == 1 ? "1 snapshot is" : "\(list.count) snapshots are"
        return [Note(setting: "snapshots", why: "\(what) not exported (\(list.map(\.name).joined(separator: ", "))); the disks are exported as they are now")]
    }

    /// Settings of what vmtools does around a start, not of the machine:
    /// an export notes them with why.
    package static let aroundTheMachine: [String: String] = {
        var why = [
            SettingKey.qemuShutdownTimeout: "how long vmdown waits for the guest to power off",
            SettingKey.qemuCompress: "how vmup compresses a disk it imports",
            SettingKey.snapshotAuto: "when vmmerge and vmup take snapshots by themselves (vmsnap(1)); snapshots are not exported",
        ]
        for n in SettingKey.cloudInitInputs + [SettingKey.cloudInitInstanceID] { why[n] = "an input of the cloud-init seed vmup makes at each start" }
        for n in [SettingKey.imageName, SettingKey.imageURL, SettingKey.imageDigest] {
            why[n] = "which catalog image the VM's disk was made from (vmimage(1)); the disk itself is exported"
        }
        return why
    }()

    /// The settings the VM itself sets (its file, a template, the command
    /// line) that an export neither carried nor noted: a disabled device or
    /// an empty value leaves nothing behind.
    package static func leftOver(_ table: SettingsTable, covered: Set<String>) -> [String] {
        table.names.filter { n in
            guard SettingKey.isRecorded(n), !covered.contains(n) else { return false }
            switch table.provenance(n) {
            case .vmFile?, .template?, .commandLine?: break
            default: return false
            }
            let value = table.value(n)
            return !value.isEmpty && !(n.hasSuffix("_enable") && !table.isYes(n))
        }
    }
}
