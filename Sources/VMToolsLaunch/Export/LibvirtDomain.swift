import VMToolsCore
import VMToolsQEMU

/// A libvirt domain definition of a VM (vminfo(1), `-L`), for libvirt 9.0
/// (Debian 12) and later: the machine a start would run (`ExportPlan`), so
/// the domain is what vmup starts (its display fallback, q35's SATA). Every
/// setting libvirt cannot express becomes a note (`SETTING: not expressible
/// in libvirt: why`), written as a comment into the XML and printed by
/// vminfo on stderr: never dropped silently. Changes nothing.
public struct LibvirtDomain: Sendable {
    public private(set) var xml = ""
    public private(set) var notes: [String] = []
    /// The settings the domain expresses (the rest are noted).
    package private(set) var carried: Set<String> = []
    /// Settings neither expressed nor noted by name: each got a generic note (`ExportPlan.leftOver`).
    package private(set) var leftOver: [String] = []

    /// `accelerator` decides the domain type (`kvm` or `qemu`, i.e. TCG).
    public init(_ vm: ResolvedVM, accelerator: Accelerator.Kind, global: GlobalConfig, environment: [String: String]) throws {
        let planned = try ExportPlan.machine(vm, accelerator: accelerator, global: global, environment: environment)
        try self.init(planned.machine, vm: vm, skipped: planned.notes)
    }

    init(_ m: Machine, vm: ResolvedVM, skipped: [ExportPlan.Note]) throws {
        var b = Builder()
        let kvm = m.accelerator == .kvm
        b.open("domain", ["type": kvm ? "kvm" : "qemu"])
        let name = Self.domainName(vm.name)
        b.leaf("name", text: name)
        if name != vm.name { b.note(SettingKey.name, "a libvirt name is not empty and holds no '/' or line break; exported as '\(name)'") }
        if let uuid = m.uuid, !m.uuidIsNew { b.leaf("uuid", text: uuid) }
        // QEMU's default memory, which libvirt does not have.
        b.leaf("memory", ["unit": "MiB"], text: String(m.ram?.mebibytes ?? 128))
        b.leaf("vcpu", text: String(m.cpus ?? 1))

        // QEMU's `host` is KVM's passthrough; TCG's `max` is libvirt's `maximum` (Docs/vminfo.1).
        let cpu = (m.cpuModel ?? "").split(separator: ",", maxSplits: 1).map(String.init)
        if cpu.count > 1 { b.note(SettingKey.cpuType, "CPU features (\(cpu[1]))") }
        switch cpu.first ?? "" {
        case "": break
        case "host": b.leaf("cpu", ["mode": "host-passthrough"])
        case "max": b.leaf("cpu", ["mode": "maximum"])
        case let model:
            b.open("cpu", ["mode": "custom", "match": "exact"])
            b.leaf("model", ["fallback": "allow"], text: model)
            b.close()
        }

        // OS: machine, firmware, boot.
        var params = m.extraParams
        if let k = params.firstIndex(where: { $0 == "-machine" || $0 == "-M" }), k + 1 < params.count {
            if params[k + 1].split(separator: ",").count > 1 { b.note(SettingKey.qemuParams, "-machine options other than the type (\(params[k + 1]))") }
            params.removeSubrange(k...k + 1)
        }
        // The shipped default (vmtools.conf(5)): a USB tablet, which libvirt has.
        var tablet = false
        if let k = params.indices.first(where: { params[$0] == "-usbdevice" && $0 + 1 < params.count && params[$0 + 1] == "tablet" }) {
            tablet = true
            params.removeSubrange(k...k + 1)
        }
        let firmware = m.firmware.kind
        b.open("os", firmware == .bios ? [:] : ["firmware": "efi"])
        b.leaf("type", ["arch": m.arch, "machine": m.machineType ?? "pc"], text: "hvm")
        if firmware != .bios {
            let secure = firmware == .uefiSecure ? "yes" : "no"
            b.open("firmware")
            b.leaf("feature", ["enabled": secure, "name": "enrolled-keys"])
            b.leaf("feature", ["enabled": secure, "name": "secure-boot"])
            b.close()
            if m.firmware.varsExist {
                // libvirt 9.0 has no <nvram format='qcow2'> (9.2 adds it).
                b.note(SettingKey.firmware, "the UEFI variables in \(VMFileNames.firmwareVars) are qcow2, which libvirt 9.0 cannot use as NVRAM; libvirt starts from a fresh store")
            }
        }
        if let direct = m.directBoot {
            b.leaf("kernel", text: direct.kernel)
            if let initrd = direct.initrd { b.leaf("initrd", text: initrd) }
            if let append = direct.append { b.leaf("cmdline", text: append) }
        }
        var devs: [String] = []
        for letter in m.bootOrder {
            let dev = switch letter { case "a", "b": "fd"; case "c": "hd"; case "d": "cdrom"; default: "network" }
            if !devs.contains(dev) { devs.append(dev) }
        }
        for dev in devs { b.leaf("boot", ["dev": dev]) }
        if m.bootMenu { b.leaf("bootmenu", ["enable": "yes"]) }
        b.close()

        b.open("features")
        b.leaf("acpi")
        if m.firmware.smm { b.leaf("smm", ["state": "on"]) }
        b.close()
        b.leaf("clock", ["offset": "utc"])
        b.leaf("on_poweroff", text: "destroy")
        b.leaf("on_reboot", text: "restart")

        b.open("devices")
        b.leaf("emulator", text: "/usr/bin/qemu-system-\(m.arch)")
        try Self.devices(&b, m, tablet: tablet)
        b.close()

        if !params.isEmpty {
            b.note(SettingKey.qemuParams, "extra QEMU arguments (\(params.joined(separator: " "))); add them in <qemu:commandline> by hand if needed")
        }
        for seed in m.seeds { b.note(seed.setting, Self.seedNote(seed)) }
        if m.macosOSK != nil { b.note(SettingKey.macosOSK, "the macOS SMC key") }
        for n in skipped { b.note(n.setting, n.why) }
        carried = Self.expressed(vm.settings)
        for n in ExportPlan.leftOver(vm.settings, covered: carried.union(b.noted)) {
            if let why = ExportPlan.aroundTheMachine[n] {
                b.note(n, why)
            } else {
                leftOver.append(n)
                b.note(n, "no libvirt equivalent ('\(vm.settings.value(n))')")
            }
        }
        b.close()
        xml = b.text
        notes = b.notes
    }

    static func seedNote(_ seed: Machine.Seed) -> String {
        switch seed.setting {
        case SettingKey.cloudInitEnable: "vmup makes the cloud-init seed at each start; attach a seed ISO as a CD-ROM"
        case SettingKey.installPreseed: "vmup offers the preseed file over QEMU's user-mode TFTP (\(seed.path)); serve it to the installer by hand"
        default: "vmup writes the \(seed.label) volume \(seed.path) at each start; attach it as a CD-ROM"
        }
    }
}
