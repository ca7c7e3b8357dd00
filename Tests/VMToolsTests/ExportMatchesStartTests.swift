import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch

/// `vminfo -L` describes the machine `vmup` starts (issue 23): for each
/// display and firmware form, the export of a VM is compared with the plan
/// of a start of the same settings in the same environment (what `vmup -n`
/// prints), both its machine and its QEMU arguments.
@Suite struct ExportMatchesStartTests {
    struct Homes {
        let s = Scratch()
        let global: GlobalConfig
        let console: Console

        init() throws {
            try s.write("etc/vmtools.conf", "vm_qemu_accel=tcg\n")
            global = try resolver(s).loadGlobal()
            let stream = OutputStream(fd: open("/dev/null", O_WRONLY))
            console = Console(command: "test", out: stream, err: stream)
        }

        /// The plan of a start (dry run, every module of the list) and the export, of one VM.
        func startAndExport(_ settings: String, environment: [String: String]) throws -> (plan: LaunchPlan, xml: String) {
            let home = try s.write("vm/vm.settings", "vm_name=vm\n" + settings).deletingLastPathComponent
            let vm = try resolver(s).loadVM(home: home, global: global)
            let context = Context(environment: environment, cwd: s.path, paths: s.paths, console: console)
            let start = try LaunchPlanner.plan(vm.settings, home: home, runDirectory: nil, children: [], global: global, hostPaths: [],
                                               dryRun: true, context: context)
            let domain = try LibvirtDomain(vm, accelerator: try ExportPlan.accelerator(vm.settings), global: global, environment: environment)
            return (start.plan, domain.xml)
        }
    }

    static let noDisplay = ["PATH": "/usr/bin:/bin"]
    static let display = ["PATH": "/usr/bin:/bin", "DISPLAY": ":0"]

    /// QEMU's front-end in argv: `-display TYPE[,…]`, `vnc=…`, or `-spice`.
    static func frontend(_ argv: [String]) -> String {
        if argv.contains("-spice") { return "spice" }
        guard let k = argv.firstIndex(of: "-display"), k + 1 < argv.count else { return "default" }
        let value = argv[k + 1]
        return value.hasPrefix("vnc=") ? "vnc" : String(value.prefix { $0 != "," })
    }

    @Test(.requires("qemu-system-x86_64"), arguments: [
        ("device none", "vm_display_device=none\n", noDisplay),
        ("type none", "vm_display_type=none\n", noDisplay),
        ("sdl without a display", "vm_display_type=sdl\n", noDisplay),
        ("sdl with a display", "vm_display_type=sdl\n", display),
        ("gtk without a display", "vm_display_type=gtk\n", noDisplay),
        ("gtk with a display", "vm_display_type=gtk\n", display),
        ("vnc on a fixed port", "vm_display_type=vnc\nvm_display_port=5905\n", noDisplay),
        ("vnc on a free port", "vm_display_type=vnc\n", noDisplay),
        ("vnc on a unix socket", "vm_display_type=vnc\nvm_display_iface=unix\n", noDisplay),
        ("spice on a free port", "vm_display_type=spice\n", noDisplay),
        ("spice on a fixed port", "vm_display_type=spice\nvm_display_port=5930\n", noDisplay),
    ]) func theExportedDisplayIsTheOneQEMUGets(form: String, settings: String, environment: [String: String]) throws {
        guard requireTool("qemu-system-x86_64") != nil else { return }
        let lab = try Homes()
        let (plan, xml) = try lab.startAndExport(settings, environment: environment)
        let display = plan.machine.display
        // The machine is what argv says.
        let argvFrontend = Self.frontend(plan.argv)
        #expect(argvFrontend == display.frontend.rawValue || (display.frontend == .none && ["none", "default"].contains(argvFrontend)),
                "\(form): argv has \(argvFrontend), the machine \(display.frontend)")
        // The export is the machine.
        switch display.frontend {
        case .none:
            #expect(!xml.contains("<graphics"), "\(form): \(xml)")
        case .sdl, .gtk:
            #expect(xml.contains("<graphics type='sdl'/>"), "\(form): \(xml)")
        case .vnc, .spice:
            #expect(xml.contains("type='\(display.frontend.rawValue)'>"), "\(form): \(xml)")
            #expect(!xml.contains("<graphics type='sdl'/>"), "\(form): \(xml)")
            if case .tcp(_, let port?, _)? = display.listen {
                #expect(xml.contains("autoport='no'") && xml.contains("port='\(port)'"), "\(form): \(xml)")
                #expect(plan.argv.contains { $0.contains(":\(port - 5900)") || $0.contains("port=\(port)") }, "\(form): \(plan.argv)")
            } else {
                #expect(xml.contains("autoport='yes'"), "\(form): \(xml)")
            }
        }
        if display.device == "none" { #expect(xml.contains("<model type='none'/>"), "\(form): \(xml)") }
        // Without a display server SDL and GTK get VNC, in the start and in the export.
        if environment["DISPLAY"] == nil, settings.contains("=sdl") || settings.contains("=gtk") {
            #expect(display.frontend == .vnc && display.fallback != nil, "\(form): \(display)")
            #expect(xml.contains("vm_display_type: not expressible in libvirt: no $DISPLAY"), "\(form): \(xml)")
        }
    }

    @Test(.requires("qemu-system-x86_64", "qemu-img", "virsh"), arguments: ["bios", "uefi", "uefi-secure"])
    func theExportedMachineAndBusesAreTheOnesQEMUGets(firmware: String) throws {
        guard requireTool("qemu-img") != nil else { return }
        let lab = try Homes()
        try lab.s.mkdir("vm")
        let r = try Subprocess("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", lab.s.url("vm/disk.qcow2"), "16M"]).run()
        try #require(r.status == 0, "\(r.stderrText)")
        try lab.s.write("vm/cd.iso", String(repeating: "\0", count: 2048))
        let (plan, xml) = try lab.startAndExport("""
            vm_firmware=\(firmware)
            vm_display_type=none
            vm_storage_hdd1_enable=yes
            vm_storage_hdd1_backend=disk.qcow2
            vm_storage_cdrom1_enable=yes
            vm_storage_cdrom1_backend=cd.iso

            """, environment: Self.noDisplay)
        let m = plan.machine
        // The machine is what argv says: q35 only where a -machine option names it.
        let q35 = plan.argv.indices.contains { plan.argv[$0] == "-machine" && $0 + 1 < plan.argv.count && plan.argv[$0 + 1].hasPrefix("q35") }
        #expect(m.isQ35 == q35 && q35 == (firmware == "uefi-secure"), "\(firmware): \(plan.argv)")
        #expect(plan.argv.contains { $0.contains("disk.qcow2") && $0.contains("if=ide,index=0") }, "\(plan.argv)")
        // q35's IDE drives are on AHCI, SATA: the export says so.
        let bus = q35 ? "sata" : "ide"
        #expect(m.disks.map(\.bus.rawValue) == [bus] && m.cdroms.map(\.bus.rawValue) == [bus], "\(firmware): \(m.disks) \(m.cdroms)")
        #expect(xml.contains("machine='\(m.machineType ?? "pc")'"), "\(firmware): \(xml)")
        #expect(xml.contains("<target bus='\(bus)' dev='\(q35 ? "sda" : "hda")'/>"), "\(firmware): \(xml)")
        #expect(xml.contains("<target bus='\(bus)' dev='\(q35 ? "sdc" : "hdc")'/>"), "\(firmware): \(xml)")
        #expect(xml.contains("<os firmware='efi'>") == (firmware != "bios"), "\(firmware): \(xml)")
        #expect(xml.contains("<smm state='on'/>") == m.firmware.smm && m.firmware.smm == q35, "\(firmware): \(xml)")
        // libvirt takes the SATA drives as written (its own schema, no daemon).
        if let virsh = requireTool("virsh") {
            let file = try lab.s.write("domain.xml", xml)
            let v = try Subprocess(virsh, ["-q", "-c", "test:///default", "define", "--validate", file]).run()
            #expect(v.status == 0, "\(firmware): \(v.stderrText)\n\(xml)")
        }
    }
}

extension ExportMatchesStartTests {
    /// A module file is the user's code for a start: an export does not run
    /// it, and names it (vminfo(1) LIBVIRT); a start runs it.
    @Test(.requires("qemu-system-x86_64")) func aModuleFileIsNotRunForAnExportAndIsNoted() throws {
        guard requireTool("qemu-system-x86_64") != nil else { return }
        let lab = try Homes()
        let marker = lab.s.url("ran")
        let file = try lab.s.writeScript("etc/modules/buildcmd/c_mark", "#!/bin/sh\n: > '\(marker)'\necho -no-hpet\n")
        let replaced = try lab.s.writeScript("etc/modules/buildcmd/keyboard", "#!/bin/sh\n: > '\(marker)'\n")
        let (plan, xml) = try lab.startAndExport("vm_modules_buildcmd=c_mark\nvm_keyboard_mapping=de\nvm_display_type=vnc\n", environment: Self.noDisplay)
        #expect(plan.argv.contains("-no-hpet"), "the start runs it: \(plan.argv)")
        try FileManager.default.removeItem(atPath: marker)
        let home = lab.s.url("vm")
        let vm = try resolver(lab.s).loadVM(home: home, global: lab.global)
        let domain = try LibvirtDomain(vm, accelerator: .tcg, global: lab.global, environment: Self.noDisplay)
        #expect(!FileManager.default.fileExists(atPath: marker), "an export ran a module file")
        #expect(domain.notes.contains("\(SettingKey.modulesBuildcmd): not expressible in libvirt: the module file \(file) is not run for an export"),
                "\(domain.notes)")
        #expect(domain.notes.contains("\(SettingKey.modulesBuildcmdList): not expressible in libvirt: the module file \(replaced) is not run for an export; the built-in keyboard describes that part"),
                "\(domain.notes)")
        // The built-in keyboard module described the keymap in its place.
        #expect(domain.xml.contains("keymap='de'") && xml.contains("keymap='de'"), "\(domain.xml)")
    }
}
