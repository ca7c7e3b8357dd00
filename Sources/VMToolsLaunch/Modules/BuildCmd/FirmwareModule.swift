import VMToolsCore
import VMToolsQEMU

/// `firmware`: UEFI (OVMF) for `vm_firmware=uefi|uefi-secure`, chosen from
/// QEMU's firmware descriptors, with the VM's own qcow2 variable store on
/// pflash1 (vm.settings(5), FIRMWARE). `bios` adds nothing: SeaBIOS is
/// QEMU's default. The store is planned, never made here.
public enum FirmwareModule: BuildCmdModule {
    public static let name = "firmware"

    public static func build(_ c: inout QemuCommand) throws {
        let firmware = try c.vm.firmware()
        guard firmware != .bios else { return }
        let arch = try c.vm.qemuArch()
        let machine = try machineType(c)
        c.plan.machine.firmware.kind = firmware
        guard let fw = FirmwareDescriptor.choose(firmware, architecture: arch, environment: c.environment) else {
            guard c.export else { throw FirmwareDescriptor.noneFits(firmware, settings: c.vm, environment: c.environment) }
            // Described for another host: Secure Boot's firmware needs q35 with SMM.
            if firmware == .uefiSecure {
                c.plan.machine.firmware.smm = true
                if machine == nil { c.plan.machine.machineType = "q35" }
            }
            c.plan.machine.firmware.varsExist = c.home.map { FileSystem.lexists($0.appendingPathComponent(VMFileNames.firmwareVars)) } ?? false
            return
        }
        if fw.requiresSMM, let machine, !isQ35(machine) {
            throw c.invalid(SettingKey.qemuParams, "names the machine '\(machine)', but the firmware of \(SettingKey.firmware)=\(firmware.rawValue) (\(fw.file)) needs q35 with SMM: drop it or name q35")
        }
        // A bare boot keeps its store in its run directory, gone with it; so
        // does a read-only home (its run directory is elsewhere) without one.
        var dir = c.home ?? c.runDirectory
        if let home = c.home, let run = c.runDirectory, run != home, !FileSystem.lexists(home.appendingPathComponent(VMFileNames.firmwareVars)) {
            dir = run
        }
        guard let dir else {
            throw c.invalid(SettingKey.firmware, "UEFI needs a VM home or a run directory for its variable store")
        }
        let store = dir.appendingPathComponent(VMFileNames.firmwareVars)
        let exists = FileSystem.lexists(store)
        if !exists {
            c.plan.firmwareStore = .init(path: store, template: fw.varsTemplate, templateFormat: fw.varsTemplateFormat)
        }
        c.plan.machine.firmware = .init(kind: firmware, code: fw.code, vars: store, varsExist: exists, smm: fw.requiresSMM)
        if fw.requiresSMM, machine == nil { c.plan.machine.machineType = "q35" }
        // The CODE node is named after the setting: vmps reads it back from QEMU's argv.
        let code = codeNode + firmware.rawValue
        c.append("-blockdev", "driver=\(qemuEscape(fw.codeFormat)),node-name=\(code),read-only=on,file.driver=file,file.filename=\(qemuEscape(fw.code)),file.read-only=on")
        c.append("-blockdev", "driver=qcow2,node-name=\(varsNode),file.driver=file,file.filename=\(qemuEscape(store))")
        // Later -machine options merge with earlier ones (vm_qemu_params).
        var options = fw.requiresSMM ? (machine == nil ? ["q35", "smm=on"] : ["smm=on"]) : []
        options += ["pflash0=\(code)", "pflash1=\(varsNode)"]
        c.append("-machine", options.joined(separator: ","))
        // Only SMM code may write the variables: what keeps Secure Boot's keys safe from the guest.
        if fw.requiresSMM { c.append("-global", "driver=cfi.pflash01,property=secure,value=on") }
        if firmware == .uefiSecure, try c.vm.directBoot(home: c.home, environment: c.environment) != nil {
            c.notices.append("\(SettingKey.firmware)=uefi-secure: OVMF starts a direct kernel boot (\(SettingKey.bootKernel)) without checking its signature; Secure Boot guards only what the firmware loads from disk")
        }
    }

    static let codeNode = "firmware-"
    static let varsNode = "firmware-vars"

    /// The firmware a running QEMU was started with, from its argv (vmps -j):
    /// the `vm_firmware` value this module named its CODE node after,
    /// `bios` without flash, `other` for firmware vmtools did not set up.
    public static func firmware(argv: [String]) -> String {
        // Byte search first: vmps asks for every VM on every refresh.
        for a in argv where a.containsBytes("pflash0=") {
            for option in a.split(separator: ",") where option.hasPrefix("pflash0=") {
                let node = option.dropFirst("pflash0=".count)
                if node.hasPrefix(codeNode), let f = VMSettings.Firmware(rawValue: String(node.dropFirst(codeNode.count))) { return f.rawValue }
                return "other"
            }
        }
        return argv.contains { $0 == "-bios" || $0.containsBytes("if=pflash") } ? "other" : VMSettings.Firmware.bios.rawValue
    }

    /// The machine type `vm_qemu_params` names (`-M pc`, `-machine q35,…`, `type=`), if any.
    static func machineType(_ c: QemuCommand) throws -> String? { try machineOptions(c).type }

    /// The type and the other `-machine` options `vm_qemu_params` names.
    static func machineOptions(_ c: QemuCommand) throws -> (type: String?, others: [String]) {
        let params = try c.vm.qemuParams()
        var type: String?
        var others: [String] = []
        for (i, p) in params.enumerated() where ["-M", "-machine", "--machine"].contains(p) && i + 1 < params.count {
            for option in params[i + 1].split(separator: ",") {
                if !option.contains("=") { type = String(option) } else if option.hasPrefix("type=") { type = String(option.dropFirst(5)) } else { others.append(String(option)) }
            }
        }
        return (type, others)
    }

    static func isQ35(_ type: String) -> Bool { type == "q35" || type.hasPrefix("pc-q35-") }
}
