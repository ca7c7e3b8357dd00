import Foundation
import Testing
@testable import VMToolsKit

/// Settings → QEMU arguments, module by module (qemu-cmdline.md).
@Suite struct BuildCmdTests {
    static let tcg = Accelerator(kind: .tcg, reason: "test", fellBack: true)
    static let kvm = Accelerator(kind: .kvm, reason: "test", fellBack: false)

    func command(_ s: Scratch, _ values: [String: String], home: String? = nil, children: [String] = [],
                 accel: Accelerator = tcg, dryRun: Bool = true) throws -> QemuCommand {
        let g = try resolver(s).loadGlobal()
        var settings = g.settings
        for (k, v) in values { settings.set(k, v, .commandLine("-o")) }
        if let home { settings.set("vm_home", home, .derived("test")) }
        var c = QemuCommand(settings: settings, home: home, global: g, environment: ["PATH": "/usr/bin:/bin", "HOME": s.url("home")],
                            accelerator: accel, children: children, dryRun: dryRun)
        try c.build(ModuleRegistry.buildcmdModules(settings, paths: s.paths))
        return c
    }

    func args(_ s: Scratch, _ values: [String: String], home: String? = nil, accel: Accelerator = tcg) throws -> [String] {
        guard requireTool("qemu-system-x86_64") != nil else { return [] }
        return try command(s, values, home: home, accel: accel).argv
    }

    @Test func aVMHomeWithOneDisk() throws {
        guard requireTool("qemu-system-x86_64") != nil else { return }
        let s = Scratch()
        try s.mkdir("vm1")
        try s.writeBytes("vm1/hdd.qcow2", [0x51, 0x46, 0x49, 0xFB, 0, 0, 0, 3])
        let argv = try args(s, ["vm_name": "vm1", "vm_networking_iface1_enable": "yes", "vm_networking_iface1_mac": "52:54:00:29:a7:c7",
                                "vm_storage_hdd1_enable": "yes", "vm_storage_hdd1_backend": s.url("vm1/hdd.qcow2")], home: s.url("vm1"))
        #expect(argv == ["/usr/bin/qemu-system-x86_64", "-usbdevice", "tablet", "-accel", "tcg", "-pidfile", s.url("vm1/qemu.pid"), "-daemonize",
                         "-boot", "order=cd", "-smp", "2", "-cpu", "max", "-display", "sdl", "-vga", "std",
                         "-monitor", "unix:./monitor.sock,server=on,wait=off", "-qmp", "unix:./qmp.sock,server=on,wait=off",
                         "-serial", "file:./serial.log", "-name", "vm1",
                         "-device", "e1000-82545em,mac=52:54:00:29:a7:c7,netdev=nd1", "-netdev", "user,id=nd1", "-m", "2G",
                         "-drive", "file=\(s.url("vm1/hdd.qcow2")),format=qcow2,if=ide,index=0,media=disk,discard=unmap,detect-zeroes=unmap"])
    }

    @Test func anISOWithoutAHome() throws {
        let s = Scratch()
        try s.writeBytes("a,b.iso", [UInt8](repeating: 0, count: 0x8001) + Array("CD001".utf8))
        let argv = try args(s, ["vm_name": "a,b.iso", "vm_boot_order": "d", "vm_storage_cdrom1_enable": "yes", "vm_storage_cdrom1_backend": s.url("a,b.iso")])
        guard !argv.isEmpty else { return }
        #expect(argv.contains("-monitor") && argv[argv.firstIndex(of: "-monitor")! + 1] == "none")
        #expect(!argv.contains("-pidfile") && !argv.contains("-qmp") && !argv.contains("-serial"))
        #expect(argv.suffix(2) == ["-drive", "if=ide,index=2,media=cdrom,read-only=on,file=\(s.url("a,,b.iso")),format=raw"])
        #expect(argv[argv.firstIndex(of: "-name")! + 1] == "a,,b.iso")
        #expect(argv.contains("-net") && argv[argv.firstIndex(of: "-net")! + 1] == "none")
    }

    @Test(arguments: [
        (["vm_display_device": "none", "vm_display_type": "vnc"], ["-display", "none", "-vga", "none"]),
        (["vm_display_type": "gtk"], ["-display", "gtk", "-vga", "std"]),
        (["vm_display_type": "none", "vm_display_device": "virtio"], ["-display", "none", "-vga", "virtio"]),
        (["vm_display_type": "vnc", "vm_display_port": "5901"], ["-display", "vnc=127.0.0.1:1", "-vga", "std"]),
        (["vm_display_type": "vnc", "vm_display_port": "6001", "vm_display_portmin": "6000"], ["-display", "vnc=127.0.0.1:101", "-vga", "std"]),
        (["vm_display_type": "spice", "vm_display_port": "5930"],
         ["-chardev", "spicevmc,id=spicechannel0,name=vdagent", "-device", "virtio-serial-pci", "-device",
          "virtserialport,chardev=spicechannel0,name=com.redhat.spice.0", "-spice", "addr=127.0.0.1,port=5930,disable-ticketing=on", "-vga", "qxl"]),
    ])
    func displays(_ values: [String: String], _ expected: [String]) throws {
        let s = Scratch()
        let argv = try args(s, values)
        guard !argv.isEmpty else { return }
        let from = try #require(argv.firstIndex { $0 == "-display" || $0 == "-chardev" })
        #expect(Array(argv[from..<(from + expected.count)]) == expected)
    }

    @Test func vncFindsAFreePortAndSaysWhere() throws {
        guard requireTool("qemu-system-x86_64") != nil else { return }
        let s = Scratch()
        let c = try command(s, ["vm_display_type": "vnc", "vm_name": "v"])
        let vnc = try #require(c.argv.first { $0.hasPrefix("vnc=127.0.0.1:") })
        let display = try #require(Int(vnc.dropFirst("vnc=127.0.0.1:".count)))
        #expect(c.notices.contains("v: listening on vnc://127.0.0.1:\(5900 + display)"))
    }

    @Test(arguments: [
        (["vm_display_type": "curses"], "vm_display_type"), (["vm_display_device": "tcx"], "vm_display_device"),
        (["vm_display_type": "vnc", "vm_display_port": "5800"], "vm_display_port"), (["vm_ram_size": "2GB"], "vm_ram_size"),
        (["vm_cpu_count": "two"], "vm_cpu_count"), (["vm_qemu_arch": "x86 64"], "vm_qemu_arch"), (["vm_boot_order": "cz"], "vm_boot_order"),
        (["vm_networking_iface1_enable": "yes", "vm_networking_iface1_mac": "01:00"], "vm_networking_iface1_mac"),
        (["vm_storage_rwmode": "rx"], "vm_storage_rwmode"), (["vm_storage_hdd1_enable": "yes"], "vm_storage_hdd1_backend"),
        (["vm_storage_cdrom1_enable": "yes", "vm_storage_cdrom1_backend": "rw:/x.iso"], "vm_storage_cdrom1_backend"),
        (["vm_qemu_params": "-append 'open"], "vm_qemu_params"),
    ])
    func badValuesNameTheSetting(_ values: [String: String], _ setting: String) throws {
        guard requireTool("qemu-system-x86_64") != nil else { return }
        let s = Scratch()
        let e = expectError { _ = try command(s, values) }
        #expect(e?.subject == setting, "\(String(describing: e))")
    }

    @Test func interfacesInBytewiseOrderWithTheirOwnSettings() throws {
        let s = Scratch()
        let argv = try args(s, [
            "vm_networking_iface1_enable": "yes", "vm_networking_iface1_mac": "52:54:00:00:00:01",
            "vm_networking_iface2_enable": "yes", "vm_networking_iface2_mac": "52:54:00:00:00:02",
            "vm_networking_iface2_mode": "user,hostfwd=tcp:127.0.0.1:2222-:22", "vm_networking_iface2_device": "virtio-net-pci",
            "vm_networking_iface10_enable": "yes", "vm_networking_iface10_mac": "52:54:00:00:00:10",
            "vm_networking_iface3_enable": "no",
        ])
        guard !argv.isEmpty else { return }
        let nets = argv.enumerated().filter { $0.element == "-device" || $0.element == "-netdev" }.map { argv[$0.offset + 1] }
        #expect(nets == ["e1000-82545em,mac=52:54:00:00:00:01,netdev=nd1", "user,id=nd1",
                         "e1000-82545em,mac=52:54:00:00:00:10,netdev=nd10", "user,id=nd10",
                         "virtio-net-pci,mac=52:54:00:00:00:02,netdev=nd2", "user,hostfwd=tcp:127.0.0.1:2222-:22,id=nd2"])
    }

    @Test func aMACPrefixIsCompletedAtRandom() throws {
        let s = Scratch()
        let argv = try args(s, ["vm_networking_iface1_enable": "yes", "vm_networking_iface1_mac": "0a:0b:0c:"])
        guard !argv.isEmpty else { return }
        let device = try #require(argv.first { $0.hasPrefix("e1000") })
        #expect(device.hasPrefix("e1000-82545em,mac=0a:0b:0c:") && device.hasSuffix(",netdev=nd1") && device.count == "e1000-82545em,mac=0a:0b:0c:00:00:00,netdev=nd1".count)
    }

    @Test func theAcceleratorDecidesCPUModelAndDropsEnableKVM() throws {
        let s = Scratch()
        let tcg = try args(s, ["vm_qemu_params": "-enable-kvm -usbdevice tablet"])
        guard !tcg.isEmpty else { return }
        #expect(!tcg.contains("-enable-kvm") && tcg.contains("tcg") && tcg[tcg.firstIndex(of: "-cpu")! + 1] == "max")
        let kvm = try args(s, [:], accel: Self.kvm)
        #expect(kvm[kvm.firstIndex(of: "-accel")! + 1] == "kvm" && kvm[kvm.firstIndex(of: "-cpu")! + 1] == "host")
        let own = try args(s, ["vm_qemu_params": "-accel tcg,thread=single", "vm_cpu_type": "qemu64"])
        #expect(own.filter { $0 == "-accel" }.count == 1 && own[own.firstIndex(of: "-cpu")! + 1] == "qemu64")
    }

    @Test func autoPicksKVMOnlyWhereItReallyWorks() throws {
        var t = SettingsTable()
        t.set("vm_qemu_accel", "auto", .builtin)
        let pvm = Accelerator.Host(deviceUsable: true, hardwareModule: false, pvm: true)
        let real = Accelerator.Host(deviceUsable: true, hardwareModule: true, pvm: false)
        let locked = Accelerator.Host(deviceUsable: false, hardwareModule: true, pvm: false)
        #expect(try Accelerator.choose(t, host: pvm).kind == .tcg)
        #expect(try Accelerator.choose(t, host: pvm).reason.contains("kvm_pvm"))
        #expect(try Accelerator.choose(t, host: real).kind == .kvm)
        #expect(try Accelerator.choose(t, host: locked).kind == .tcg)
        t.set("vm_qemu_accel", "tcg", .builtin)
        #expect(try Accelerator.choose(t, host: real).kind == .tcg)
        t.set("vm_qemu_accel", "kvm", .builtin)
        #expect(try Accelerator.choose(t, host: pvm).kind == .kvm)  // forced: the user knows best
        #expect(expectError { _ = try Accelerator.choose(t, host: locked) }?.subject == "vm_qemu_accel")
        t.set("vm_qemu_accel", "hvf", .builtin)
        #expect(expectError { _ = try Accelerator.choose(t, host: real) }?.subject == "vm_qemu_accel")
    }

    func disk(_ s: Scratch, _ backend: String, rwmode: String = "rw", children: [String] = [], extra: [String: String] = [:]) throws -> String? {
        guard requireTool("qemu-system-x86_64") != nil else { return nil }
        var values = ["vm_storage_hdd1_enable": "yes", "vm_storage_hdd1_backend": backend, "vm_storage_rwmode": rwmode]
        for (k, v) in extra { values[k] = v }
        let c = try command(s, values, home: s.url("vm"), children: children)
        let k = try #require(c.argv.lastIndex { $0 == "-drive" })
        return c.argv[k + 1]
    }

    @Test func diskModesFollowPrefixAndCeiling() throws {
        let s = Scratch()
        try s.mkdir("vm")
        try s.writeBytes("vm/d.qcow2", [0x51, 0x46, 0x49, 0xFB, 0, 0, 0, 3])
        let d = s.url("vm/d.qcow2")
        let rw = "file=\(d),format=qcow2,if=ide,index=0,media=disk,discard=unmap,detect-zeroes=unmap"
        let snap = "file=\(d),format=qcow2,if=ide,index=0,media=disk,snapshot=on"
        let ro = "file=\(d),format=qcow2,if=virtio,read-only=on"
        for (backend, mode, expected) in [("d.qcow2", "rw", rw), ("d.qcow2", "snap", snap), ("d.qcow2", "ro", ro),
                                          ("snap:d.qcow2", "rw", snap), ("ro:\(d)", "rw", ro), ("rw:\(d)", "rw", rw),
                                          ("rw:\(d)", "snap", snap), ("snap:\(d)", "ro", ro)] {
            guard let got = try disk(s, backend, rwmode: mode) else { return }
            #expect(got == expected, "\(backend) with \(mode)")
        }
    }

    @Test func legacyFormatsRemoteDisksAndDirectories() throws {
        let s = Scratch()
        try s.mkdir("vm/share")
        try s.write("vm/old.vmdk", "# Disk DescriptorFile\n")
        guard let vmdk = try disk(s, "old.vmdk") else { return }
        #expect(vmdk == "file=\(s.url("vm/old.vmdk")),format=vmdk,if=ide,index=0,media=disk,snapshot=on")
        #expect(try disk(s, "rw:old.vmdk") == "file=\(s.url("vm/old.vmdk")),format=vmdk,if=ide,index=0,media=disk,discard=unmap,detect-zeroes=unmap")
        #expect(try disk(s, "http://example.com/d,1.qcow2") == "file=http://example.com/d,,1.qcow2,if=ide,index=0,media=disk,snapshot=on")
        #expect(try disk(s, "nbd:localhost:10809") == "file=nbd:localhost:10809,if=ide,index=0,media=disk,discard=unmap,detect-zeroes=unmap")
        #expect(try disk(s, "share") == "file=fat:\(s.url("vm/share")),format=raw,if=ide,index=0,media=disk,snapshot=on")
        #expect(try disk(s, "rw:share") == "file=fat:rw:\(s.url("vm/share")),format=raw,if=ide,index=0,media=disk")
        #expect(expectError { _ = try disk(s, "snap:share") } != nil)
    }

    @Test func aParentWithChildrenNeverOpensItsDiskReadWrite() throws {
        let s = Scratch()
        try s.mkdir("vm")
        try s.writeBytes("vm/d.qcow2", [0x51, 0x46, 0x49, 0xFB, 0, 0, 0, 3])
        guard requireTool("qemu-system-x86_64") != nil else { return }
        let e = expectError { _ = try disk(s, "d.qcow2", children: [s.url("vm/child")]) }
        #expect(e?.message.contains("has children") == true && e?.message.contains("-s") == true)
        #expect(try disk(s, "d.qcow2", rwmode: "snap", children: [s.url("vm/child")])?.hasSuffix("snapshot=on") == true)
    }

    /// A saved createsize made the original wipe the disk at every start: never.
    @Test func createSizeCreatesOnlyMissingDisks() throws {
        guard let qemuImg = requireTool("qemu-img"), requireTool("qemu-system-x86_64") != nil else { return }
        let s = Scratch()
        try s.mkdir("vm")
        let values = ["vm_storage_hdd1_enable": "yes", "vm_storage_hdd1_backend": "new.qcow2", "vm_storage_hdd1_createsize": "16M"]
        let c = try command(s, values, home: s.url("vm"), dryRun: false)
        #expect(c.createdFiles == [s.url("vm/new.qcow2")])
        let info = try QemuImg.info(s.url("vm/new.qcow2"), backingChain: false, environment: ["PATH": "/usr/bin"])
        #expect(info["virtual-size"]?.numberValue == Double(16 << 20))
        // Put data in it; a second build with the same createsize keeps it.
        #expect(try Subprocess(qemuImg, ["resize", "-q", s.url("vm/new.qcow2"), "32M"]).run().status == 0)
        let again = try command(s, values, home: s.url("vm"), dryRun: false)
        #expect(again.createdFiles.isEmpty)
        #expect(again.notices.contains { $0.contains("exists and is kept") })
        let after = try QemuImg.info(s.url("vm/new.qcow2"), backingChain: false, environment: ["PATH": "/usr/bin"])
        #expect(after["virtual-size"]?.numberValue == Double(32 << 20))
        #expect(expectError { _ = try command(s, values.merging(["vm_storage_hdd1_createsize": "16MB"]) { $1 }, home: s.url("vm")) }?.subject == "vm_storage_hdd1_createsize")
    }

    @Test func keyboardBootMenuAndTheMacOSModule() throws {
        let s = Scratch()
        let argv = try args(s, ["vm_keyboard_mapping": "fr", "vm_boot_menu": "yes", "vm_boot_order": "", "vm_macos_osk": "key,with,commas",
                                "cfg_modules_buildcmd": "qemu boot keyboard macos"])
        guard !argv.isEmpty else { return }
        #expect(Array(argv.suffix(6)) == ["-boot", "menu=on", "-k", "fr", "-device", "isa-applesmc,osk=key,,with,,commas"])
        let ordered = try args(s, ["vm_boot_order": "dc", "vm_boot_menu": "yes", "cfg_modules_buildcmd": "qemu boot"])
        #expect(Array(ordered.suffix(2)) == ["-boot", "order=dc,menu=on"])
    }

    @Test func aDirectoryCDROMBecomesAGeneratedISO() throws {
        guard requireTool("xorriso") != nil, requireTool("qemu-system-x86_64") != nil else { return }
        let s = Scratch()
        try s.write("vm/share/readme.txt", "hello\n")
        let c = try command(s, ["vm_storage_cdrom1_enable": "yes", "vm_storage_cdrom1_backend": "share"], home: s.url("vm"), dryRun: false)
        let iso = try #require(c.temporaryFiles.first)
        #expect(c.argv.last == "if=ide,index=2,media=cdrom,read-only=on,file=\(iso),format=raw")
        #expect(DiskImageKind.isISO(iso))
        try FileManager.default.removeItem(atPath: iso)
    }

    @Test func anEnabledEmptyCDROMDrive() throws {
        let s = Scratch()
        let argv = try args(s, ["vm_storage_cdrom2_enable": "yes"])
        guard !argv.isEmpty else { return }
        #expect(argv.suffix(2) == ["-drive", "if=ide,index=3,media=cdrom,read-only=on"])
    }

    @Test func foregroundModeMuxesSerialAndMonitorOnTheTerminal() throws {
        let s = Scratch()
        try s.mkdir("vm")
        let argv = try args(s, ["vm_qemu_daemonize": "no"], home: s.url("vm"))
        guard !argv.isEmpty else { return }
        #expect(!argv.contains("-daemonize") && !argv.contains("-monitor"))
        #expect(argv.contains("stdio,id=console0,mux=on,signal=off,logfile=./serial.log"))
        #expect(argv.contains("-mon"))
    }

    @Test func unknownModulesAndOverridesAreErrors() throws {
        guard requireTool("qemu-system-x86_64") != nil else { return }
        let s = Scratch()
        let e = expectError { _ = try command(s, ["cfg_modules_buildcmd": "qemu nosuch"]) }
        #expect(e?.message.contains("module 'nosuch' not found") == true)
        try s.write("etc/modules/buildcmd/name.inc.sh", "mod_buildcmd() { :; }\n")
        let o = expectError { _ = try command(s, [:]) }
        #expect(o?.subject == s.url("etc/modules/buildcmd/name.inc.sh"))
    }
}
