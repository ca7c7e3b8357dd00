import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch

/// `LaunchPlan.machine` (Docs/ARCHITECTURE.md, "The launch pipeline"): each
/// buildcmd module describes what it attaches, as its arguments attach it.
@Suite struct MachineTests {
    static let tcg = Accelerator(kind: .tcg, reason: "test")

    func plan(_ s: Scratch, _ settings: String) throws -> LaunchPlan {
        let home = try s.write("vm/vm.settings", "vm_name=vm\n" + settings).deletingLastPathComponent
        let global = try resolver(s).loadGlobal()
        let vm = try resolver(s).loadVM(home: home, global: global)
        var c = QemuCommand(settings: vm.settings, home: home, global: global, environment: ["PATH": "/usr/bin:/bin"], accelerator: Self.tcg,
                            dryRun: true)
        try c.build(ModuleRegistry.buildcmdModules(vm.settings, paths: s.paths))
        return c.plan
    }

    @Test(.requires("qemu-img", "qemu-system-x86_64")) func disksAndCDROMsAreDescribedAsQEMUAttachesThem() throws {
        guard requireTool("qemu-img") != nil else { return }
        let s = Scratch()
        try s.mkdir("vm/dir")
        try s.mkdir("vm/cdtree")
        for d in ["a", "b"] {
            let r = try Subprocess("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", s.url("vm/\(d).qcow2"), "16M"]).run()
            try #require(r.status == 0, "\(r.stderrText)")
        }
        try s.write("vm/cd.iso", String(repeating: "\0", count: 2048))
        let p = try plan(s, """
            vm_display_type=none
            vm_storage_hdd_interface=virtio
            vm_storage_hdd1_enable=yes
            vm_storage_hdd1_backend=a.qcow2
            vm_storage_hdd2_enable=yes
            vm_storage_hdd2_backend=ro:b.qcow2
            vm_storage_hdd3_enable=yes
            vm_storage_hdd3_backend=snap:a.qcow2
            vm_storage_hdd4_enable=yes
            vm_storage_hdd4_backend=dir
            vm_storage_hdd5_enable=yes
            vm_storage_hdd5_backend=nbd:localhost:10809
            vm_storage_cdrom1_enable=yes
            vm_storage_cdrom1_backend=cd.iso
            vm_storage_cdrom3_enable=yes
            vm_storage_cdrom3_backend=cdtree

            """)
        let h = s.url("vm")
        let disks = p.machine.disks.map { "\($0.slot) \($0.source) \($0.format ?? "-") \($0.mode) \($0.bus) \($0.index.map(String.init) ?? "-")" }
        #expect(disks == [
            "1 file(\"\(h)/a.qcow2\") qcow2 rw virtio 0",
            "2 file(\"\(h)/b.qcow2\") qcow2 ro virtio -",
            "3 file(\"\(h)/a.qcow2\") qcow2 snap virtio 2",
            "4 directory(\"\(h)/dir\") raw ro virtio 3",
            "5 remote(\"nbd:localhost:10809\") - rw virtio 4",
        ], "\(disks)")
        // Each as its -drive says.
        #expect(p.argv.contains("file=\(h)/b.qcow2,format=qcow2,if=virtio,read-only=on"))
        #expect(p.argv.contains("file=fat:\(h)/dir,format=raw,if=virtio,index=3,media=disk,snapshot=on"))
        let cds = p.machine.cdroms.map { "\($0.slot) \($0.bus) \($0.index)" }
        #expect(cds == ["1 ide 2", "3 scsi 0"], "\(cds)")
        #expect(p.machine.cdroms.last?.source == .packed(directory: "\(h)/cdtree", iso: "\(h)/.vmtools-cdtree.iso"))
    }

    @Test(.requires("qemu-system-x86_64", "swtpm", "passt")) func devicesFirmwareAndDisplayAreDescribed() throws {
        guard requireTool("swtpm") != nil, requireTool("passt") != nil else { return }
        let s = Scratch()
        try s.mkdir("share")
        let p = try plan(s, """
            vm_firmware=uefi-secure
            vm_tpm=2.0
            vm_serial_log=yes
            vm_guestagent_enable=yes
            vm_display_type=vnc
            vm_display_port=5950
            vm_usb1_device=046d:c52b
            vm_share1_path=\(s.url("share"))
            vm_networking_iface1_enable=yes
            vm_networking_iface1_mode=passt
            vm_networking_iface1_mac=52:54:00:00:00:01
            vm_networking_iface1_forward=2222:22
            vm_networking_iface2_enable=yes
            vm_networking_iface2_mode=none

            """)
        let m = p.machine, h = s.url("vm")
        #expect(m.machineType == "q35" && m.isQ35 && m.firmware.smm && m.firmware.kind == .uefiSecure)
        #expect(m.firmware.vars == "\(h)/firmware-vars.qcow2" && !m.firmware.varsExist && m.firmware.code != nil)
        #expect(m.tpm == Machine.TPM(stateDirectory: "\(h)/tpm", stateExists: false))
        #expect(m.serial.log == "\(h)/serial.log" && m.guestAgent != nil)
        #expect(m.display.frontend == .vnc && m.display.listen == .tcp(iface: "127.0.0.1", port: 5950, lowest: 5950))
        #expect(m.usbDevices.map(\.device.description) == ["046d:c52b"] && m.shares.count == 1)
        #expect(m.nics.count == 1, "mode none attaches nothing: \(m.nics)")
        #expect(m.nics.first?.mode == .passt && m.nics.first?.mac == "52:54:00:00:00:01" && m.nics.first?.fixedMAC == true)
        #expect(m.nics.first?.forwards.map(\.description) == ["tcp:127.0.0.1:2222:22"])
        #expect(m.arch == "x86_64" && m.name == "vm" && m.accelerator == .tcg)
    }

    /// A start knows each disk's backing chain from its host-path check (the
    /// qcow2 headers it read): a fork of a fork shows both parents, nearest first.
    @Test(.requires("qemu-img", "qemu-system-x86_64")) func aStartKnowsEachDisksBackingChain() throws {
        guard requireTool("qemu-img") != nil else { return }
        let s = Scratch()
        try s.mkdir("vm")
        try s.write("etc/vmtools.conf", "vm_qemu_accel=tcg\n")
        let h = s.url("vm")
        for (name, backing) in [("base", nil), ("mid", "base"), ("top", "mid")] as [(String, String?)] {
            let r = try Subprocess("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2"] + (backing.map { ["-b", "\(h)/\($0).qcow2", "-F", "qcow2"] } ?? [])
                                   + [s.url("vm/\(name).qcow2"), "16M"]).run()
            try #require(r.status == 0, "\(r.stderrText)")
        }
        let home = try s.write("vm/vm.settings", """
            vm_name=vm
            vm_display_type=none
            vm_storage_hdd1_enable=yes
            vm_storage_hdd1_backend=top.qcow2
            vm_storage_hdd2_enable=yes
            vm_storage_hdd2_backend=base.qcow2

            """).deletingLastPathComponent
        let global = try resolver(s).loadGlobal()
        let vm = try resolver(s).loadVM(home: home, global: global)
        let environment = ["PATH": "/usr/bin:/bin"]
        let check = try LaunchPlanner.checkHostPaths(vm, global: global, environment: environment)
        let context = Context(environment: environment, cwd: s.path, paths: s.paths, console: Console(command: "test", out: OutputStream(fd: open("/dev/null", O_WRONLY)),
                                                                                           err: OutputStream(fd: open("/dev/null", O_WRONLY))))
        let start = try LaunchPlanner.plan(vm.settings, home: home, runDirectory: nil, children: [], global: global, hostPaths: check.paths,
                                           dryRun: true, context: context)
        let chains = start.plan.machine.disks.map(\.backingChain)
        #expect(chains == [["\(h)/mid.qcow2", "\(h)/base.qcow2"], []], "\(chains)")
        // An export reads no more than each disk's header: not known there.
        let exported = try ExportPlan.machine(vm, accelerator: .tcg, global: global, environment: environment)
        #expect(exported.machine.disks.map(\.backingChain) == [nil, nil])
    }
}
