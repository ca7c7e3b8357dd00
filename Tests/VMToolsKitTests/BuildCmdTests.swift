import Foundation
import Testing
@testable import VMToolsKit

/// Settings → QEMU arguments, module by module (qemu-cmdline.md).
@Suite struct BuildCmdTests {
    static let tcg = Accelerator(kind: .tcg, reason: "test", fellBack: true)
    static let kvm = Accelerator(kind: .kvm, reason: "test", fellBack: false)

    func command(_ s: Scratch, _ values: [String: String], home: String? = nil, runDirectory: String? = nil, children: [String] = [],
                 accel: Accelerator = tcg, dryRun: Bool = true, environment: [String: String] = [:]) throws -> QemuCommand {
        let g = try resolver(s).loadGlobal()
        var settings = g.settings
        for (k, v) in values { settings.set(k, v, .commandLine("-o")) }
        if let home { settings.set("vm_home", home, .derived("test")) }
        var c = QemuCommand(settings: settings, home: home, global: g, environment: ["PATH": "/usr/bin:/bin", "HOME": s.url("home")].merging(environment) { $1 },
                            accelerator: accel, children: children, dryRun: dryRun)
        if let runDirectory { c.runDirectory = runDirectory }
        try c.build(ModuleRegistry.buildcmdModules(settings, paths: s.paths))
        return c
    }

    func args(_ s: Scratch, _ values: [String: String], home: String? = nil, accel: Accelerator = tcg,
              environment: [String: String] = [:]) throws -> [String] {
        guard requireTool("qemu-system-x86_64") != nil else { return [] }
        return try command(s, values, home: home, accel: accel, environment: environment).argv
    }

    /// An environment where SDL and GTK can open a window: a display server
    /// and a QEMU module directory holding their modules.
    func graphical(_ s: Scratch) throws -> [String: String] {
        for m in ["ui-sdl.so", "ui-gtk.so", "ui-curses.so"] { try s.write("qemu-modules/\(m)", "") }
        return ["DISPLAY": ":0", "QEMU_MODULE_DIR": s.url("qemu-modules")]
    }

    @Test(.requires("qemu-system-x86_64")) func aVMHomeWithOneDisk() throws {
        guard requireTool("qemu-system-x86_64") != nil else { return }
        let s = Scratch()
        try s.mkdir("vm1")
        try s.writeBytes("vm1/hdd.qcow2", [0x51, 0x46, 0x49, 0xFB, 0, 0, 0, 3])
        let argv = try args(s, ["vm_name": "vm1", "vm_networking_iface1_enable": "yes", "vm_networking_iface1_mac": "52:54:00:29:a7:c7",
                                "vm_storage_hdd1_enable": "yes", "vm_storage_hdd1_backend": s.url("vm1/hdd.qcow2")], home: s.url("vm1"))
        #expect(argv == ["/usr/bin/qemu-system-x86_64", "-usbdevice", "tablet", "-accel", "tcg", "-pidfile", s.url("vm1/qemu.pid"), "-daemonize",
                         "-boot", "order=cd", "-smp", "2", "-cpu", "max", "-display", "vnc=127.0.0.1:0,to=59635", "-vga", "std",
                         "-monitor", "unix:./monitor.sock,server=on,wait=off", "-qmp", "unix:./qmp.sock,server=on,wait=off",
                         "-name", "vm1",
                         "-device", "e1000-82545em,mac=52:54:00:29:a7:c7,netdev=nd1", "-netdev", "user,id=nd1", "-m", "2G",
                         "-drive", "file=\(s.url("vm1/hdd.qcow2")),format=qcow2,if=ide,index=0,media=disk,discard=unmap,detect-zeroes=unmap"])
    }

    @Test(.requires("qemu-system-x86_64")) func anISOWithoutAHome() throws {
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

    @Test(.requires("qemu-system-x86_64"), arguments: [
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
        let argv = try args(s, values, environment: try graphical(s))
        guard !argv.isEmpty else { return }
        let from = try #require(argv.firstIndex { $0 == "-display" || $0 == "-chardev" })
        #expect(Array(argv[from..<(from + expected.count)]) == expected)
    }

    /// QEMU takes the first free VNC display itself (`to=`): no port is
    /// probed beforehand, so nothing can race between probe and start.
    @Test(.requires("qemu-system-x86_64")) func qemuChoosesTheFreeVNCPortItself() throws {
        guard requireTool("qemu-system-x86_64") != nil else { return }
        let s = Scratch()
        try s.mkdir("vm")
        let c = try command(s, ["vm_display_type": "vnc", "vm_name": "v"])
        #expect(c.argv.contains("vnc=127.0.0.1:0,to=59635"))
        #expect(c.notices.contains("v: listening on vnc://127.0.0.1:5900 or the next free port (vmps shows which)"))
        let from = try command(s, ["vm_display_type": "vnc", "vm_name": "v", "vm_display_portmin": "5910"])
        #expect(from.argv.contains("vnc=127.0.0.1:10,to=59635"))
        // A daemonised VM home: vmup asks QMP once QEMU runs, and says it then.
        let home = try command(s, ["vm_display_type": "vnc", "vm_name": "v"], home: s.url("vm"), dryRun: false)
        #expect(home.vncAnnouncement == "v: listening on" && !home.notices.contains { $0.contains("vnc://") })
        // So is a bare boot: it has a QMP socket in its run-time directory.
        let bare = try command(s, ["vm_display_type": "vnc", "vm_name": "v"], runDirectory: s.url("vm"), dryRun: false)
        #expect(bare.vncAnnouncement == "v: listening on" && !bare.notices.contains { $0.contains("vnc://") })
    }

    /// Issue 10 A6: no display server, or a QEMU without its GUI module, gets
    /// VNC on loopback instead of a start that fails.
    @Test(.requires("qemu-system-x86_64")) func sdlFallsBackToVNCWhereNoWindowCanOpen() throws {
        guard requireTool("qemu-system-x86_64") != nil else { return }
        let s = Scratch()
        let gui = try graphical(s)
        for type in ["sdl", "gtk"] {
            #expect(try args(s, ["vm_display_type": type], environment: gui).contains(type))
            let headless = try command(s, ["vm_display_type": type, "vm_name": "h", "vm_display_iface": "0.0.0.0"])
            #expect(headless.argv.contains("vnc=127.0.0.1:0,to=59635"), "loopback whatever vm_display_iface says")
            #expect(headless.notices == ["h: no $DISPLAY or $WAYLAND_DISPLAY: using VNC instead of \(type.uppercased()) on vnc://127.0.0.1:5900 or the next free port (vmps shows which)"])
        }
        try s.write("no-gui/ui-curses.so", "")
        try s.write("built-in/block-curl.so", "")
        let x = ["DISPLAY": ":0"], wayland = ["WAYLAND_DISPLAY": "wayland-0"]
        #expect(DisplayModule.windowUnavailable("sdl", qemu: nil, environment: [:], moduleDirectories: []) == "no $DISPLAY or $WAYLAND_DISPLAY")
        #expect(DisplayModule.windowUnavailable("sdl", qemu: nil, environment: x, moduleDirectories: [s.url("no-gui")])?.contains("qemu-system-gui") == true)
        #expect(DisplayModule.windowUnavailable("sdl", qemu: nil, environment: wayland, moduleDirectories: [s.url("qemu-modules")]) == nil)
        #expect(DisplayModule.windowUnavailable("gtk", qemu: nil, environment: x, moduleDirectories: [s.url("built-in"), s.url("missing")]) == nil)
        #expect(DisplayModule.moduleDirectories(qemu: "/usr/bin/qemu-system-x86_64", environment: [:]).contains("/usr/lib/x86_64-linux-gnu/qemu"))
    }

    /// Issue 10 B9: a host name for vm_display_iface works (QEMU resolves it).
    @Test(.requires("qemu-system-x86_64")) func aHostNameAsDisplayInterface() throws {
        guard requireTool("qemu-system-x86_64") != nil else { return }
        let s = Scratch()
        let vnc = try command(s, ["vm_display_type": "vnc", "vm_display_iface": "localhost", "vm_name": "v"])
        #expect(vnc.argv.contains("vnc=localhost:0,to=59635"))
        let spice = try command(s, ["vm_display_type": "spice", "vm_display_iface": "localhost", "vm_name": "v"], dryRun: false)
        let arg = try #require(spice.argv.first { $0.hasPrefix("addr=localhost,port=") })
        let port = try #require(Int(arg.dropFirst("addr=localhost,port=".count).prefix { $0.isNumber }))
        #expect(port >= 5900 && spice.notices.contains("v: listening on spice://localhost:\(port)"))
        let bad = expectError { _ = try command(s, ["vm_display_type": "spice", "vm_display_iface": "no-such-host.invalid"], dryRun: false) }
        #expect(bad?.subject == "vm_display_iface")
    }

    @Test(.requires("qemu-system-x86_64"), arguments: [
        (["vm_display_type": "curses"], "vm_display_type"), (["vm_display_device": "tcx"], "vm_display_device"),
        (["vm_display_type": "vnc", "vm_display_port": "5800"], "vm_display_port"), (["vm_ram_size": "2GB"], "vm_ram_size"),
        (["vm_cpu_count": "two"], "vm_cpu_count"), (["vm_qemu_arch": "x86 64"], "vm_qemu_arch"), (["vm_boot_order": "cz"], "vm_boot_order"),
        (["vm_networking_iface1_enable": "yes", "vm_networking_iface1_mac": "01:00"], "vm_networking_iface1_mac"),
        (["vm_storage_rwmode": "rx"], "vm_storage_rwmode"), (["vm_storage_hdd1_enable": "yes"], "vm_storage_hdd1_backend"),
        (["vm_storage_cdrom1_enable": "yes", "vm_storage_cdrom1_backend": "rw:/x.iso"], "vm_storage_cdrom1_backend"),
        (["vm_storage_cdrom3_enable": "yes", "vm_storage_cdrom3_backend": "snap:/x.iso"], "vm_storage_cdrom3_backend"),
        (["vm_storage_hdd3_enable": "yes", "vm_storage_hdd3_backend": "/x.qcow2"], "vm_storage_hdd_interface"),
        (["vm_serial_log": "maybe"], "vm_serial_log"),
        (["vm_qemu_params": "-append 'open"], "vm_qemu_params"),
    ])
    func badValuesNameTheSetting(_ values: [String: String], _ setting: String) throws {
        guard requireTool("qemu-system-x86_64") != nil else { return }
        let s = Scratch()
        let e = expectError { _ = try command(s, values) }
        #expect(e?.subject == setting, "\(String(describing: e))")
    }

    @Test(.requires("qemu-system-x86_64")) func interfacesInBytewiseOrderWithTheirOwnSettings() throws {
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

    /// Issue 10 B1: a forward without a host address listens on loopback;
    /// 0.0.0.0 (or any address) written by the user is kept.
    @Test(.requires("qemu-system-x86_64")) func portForwardsBindLoopbackUnlessAnAddressIsGiven() throws {
        #expect(NetworkingModule.loopbackForwards("user,hostfwd=tcp::2222-:22") == "user,hostfwd=tcp:127.0.0.1:2222-:22")
        #expect(NetworkingModule.loopbackForwards("user,hostfwd=::80-:80,hostfwd=udp:0.0.0.0:53-:53,net=10.0.9.0/24,hostname=a,,b")
                == "user,hostfwd=:127.0.0.1:80-:80,hostfwd=udp:0.0.0.0:53-:53,net=10.0.9.0/24,hostname=a,,b")
        #expect(NetworkingModule.loopbackForwards("user,guestfwd=tcp:10.0.2.100:1234-tcp:127.0.0.1:22") == "user,guestfwd=tcp:10.0.2.100:1234-tcp:127.0.0.1:22")
        let s = Scratch()
        let argv = try args(s, ["vm_networking_iface1_enable": "yes", "vm_networking_iface1_mac": "52:54:00:00:00:01",
                                "vm_networking_iface1_mode": "user,hostfwd=tcp::2222-:22"])
        guard !argv.isEmpty else { return }
        #expect(argv.contains("user,hostfwd=tcp:127.0.0.1:2222-:22,id=nd1"))
    }

    @Test(.requires("qemu-system-x86_64")) func aMACPrefixIsCompletedAtRandom() throws {
        let s = Scratch()
        let argv = try args(s, ["vm_networking_iface1_enable": "yes", "vm_networking_iface1_mac": "0a:0b:0c:"])
        guard !argv.isEmpty else { return }
        let device = try #require(argv.first { $0.hasPrefix("e1000") })
        #expect(device.hasPrefix("e1000-82545em,mac=0a:0b:0c:") && device.hasSuffix(",netdev=nd1") && device.count == "e1000-82545em,mac=0a:0b:0c:00:00:00,netdev=nd1".count)
    }

    @Test(.requires("qemu-system-x86_64")) func theAcceleratorDecidesCPUModelAndDropsEnableKVM() throws {
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

    @Test(.requires("qemu-system-x86_64")) func diskModesFollowPrefixAndCeiling() throws {
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

    @Test(.requires("qemu-system-x86_64")) func legacyFormatsRemoteDisksAndDirectories() throws {
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

    @Test(.requires("qemu-system-x86_64")) func aParentWithChildrenNeverOpensItsDiskReadWrite() throws {
        let s = Scratch()
        try s.mkdir("vm")
        try s.writeBytes("vm/d.qcow2", [0x51, 0x46, 0x49, 0xFB, 0, 0, 0, 3])
        guard requireTool("qemu-system-x86_64") != nil else { return }
        let e = expectError { _ = try disk(s, "d.qcow2", children: [s.url("vm/child")]) }
        #expect(e?.message.contains("has children") == true && e?.message.contains("-s") == true)
        #expect(try disk(s, "d.qcow2", rwmode: "snap", children: [s.url("vm/child")])?.hasSuffix("snapshot=on") == true)
    }

    /// A saved createsize made the original wipe the disk at every start: never.
    @Test(.requires("qemu-img", "qemu-system-x86_64")) func createSizeCreatesOnlyMissingDisks() throws {
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

    @Test(.requires("qemu-system-x86_64")) func keyboardBootMenuAndTheMacOSModule() throws {
        let s = Scratch()
        let argv = try args(s, ["vm_keyboard_mapping": "fr", "vm_boot_menu": "yes", "vm_boot_order": "", "vm_macos_osk": "key,with,commas",
                                "cfg_modules_buildcmd": "qemu boot keyboard macos"])
        guard !argv.isEmpty else { return }
        #expect(Array(argv.suffix(6)) == ["-boot", "menu=on", "-k", "fr", "-device", "isa-applesmc,osk=key,,with,,commas"])
        let ordered = try args(s, ["vm_boot_order": "dc", "vm_boot_menu": "yes", "cfg_modules_buildcmd": "qemu boot"])
        #expect(Array(ordered.suffix(2)) == ["-boot", "order=dc,menu=on"])
    }

    @Test(.requires("qemu-system-x86_64", "xorriso")) func aDirectoryCDROMBecomesAGeneratedISO() throws {
        guard requireTool("xorriso") != nil, requireTool("qemu-system-x86_64") != nil else { return }
        let s = Scratch()
        try s.write("vm/share/readme.txt", "hello\n")
        let c = try command(s, ["vm_storage_cdrom1_enable": "yes", "vm_storage_cdrom1_backend": "share"], home: s.url("vm"), dryRun: false)
        let iso = try #require(c.temporaryFiles.first)
        #expect(c.argv.last == "if=ide,index=2,media=cdrom,read-only=on,file=\(iso),format=raw")
        #expect(DiskImageKind.isISO(iso))
        try FileManager.default.removeItem(atPath: iso)
    }

    @Test(.requires("qemu-system-x86_64")) func anEnabledEmptyCDROMDrive() throws {
        let s = Scratch()
        let argv = try args(s, ["vm_storage_cdrom2_enable": "yes"])
        guard !argv.isEmpty else { return }
        #expect(argv.suffix(2) == ["-drive", "if=ide,index=3,media=cdrom,read-only=on"])
    }

    @Test(.requires("qemu-system-x86_64")) func foregroundModeMuxesSerialAndMonitorOnTheTerminal() throws {
        let s = Scratch()
        try s.mkdir("vm")
        let argv = try args(s, ["vm_qemu_daemonize": "no"], home: s.url("vm"))
        guard !argv.isEmpty else { return }
        #expect(!argv.contains("-daemonize") && !argv.contains("-monitor"))
        #expect(argv.contains("stdio,id=console0,mux=on,signal=off"))
        #expect(argv.contains("-mon"))
        let logged = try args(s, ["vm_qemu_daemonize": "no", "vm_serial_log": "yes"], home: s.url("vm"))
        #expect(logged.contains("stdio,id=console0,mux=on,signal=off,logfile=./serial.log"))
    }

    /// Issue 10 A3: the serial log is asked for; without it nothing names a
    /// file in the VM home for the console.
    @Test(.requires("qemu-system-x86_64")) func theSerialLogIsASetting() throws {
        let s = Scratch()
        try s.mkdir("vm")
        let off = try args(s, [:], home: s.url("vm"))
        guard !off.isEmpty else { return }
        #expect(!off.contains("-serial") && !off.contains { $0.contains("serial.log") })
        let on = try args(s, ["vm_serial_log": "yes"], home: s.url("vm"))
        #expect(on.contains("file:./serial.log"))
        #expect(!(try args(s, ["vm_serial_log": "yes"])).contains("-serial"), "a bare boot has no home to keep a log in")
    }

    /// Issue 10 C6: any number of disks on virtio, CD-ROMs 3 and up on
    /// virtio-scsi, and a createsize alone makes a disk.
    @Test(.requires("qemu-img", "qemu-system-x86_64")) func moreThanTwoDisksAndCDROMs() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-system-x86_64") != nil else { return }
        let s = Scratch()
        try s.mkdir("vm")
        for n in [1, 2, 10] { try s.writeBytes("vm/d\(n).qcow2", [0x51, 0x46, 0x49, 0xFB, 0, 0, 0, 3]) }
        try s.writeBytes("vm/c.iso", [UInt8](repeating: 0, count: 0x8001) + Array("CD001".utf8))
        var values = ["vm_storage_hdd_interface": "virtio", "vm_storage_hdd3_createsize": "16M",
                      "vm_storage_cdrom1_enable": "yes", "vm_storage_cdrom1_backend": "c.iso",
                      "vm_storage_cdrom3_enable": "yes", "vm_storage_cdrom4_enable": "yes", "vm_storage_cdrom4_backend": "ro:c.iso"]
        for n in [1, 2, 10] { values["vm_storage_hdd\(n)_enable"] = "yes"; values["vm_storage_hdd\(n)_backend"] = "d\(n).qcow2" }
        let c = try command(s, values, home: s.url("vm"), dryRun: false)
        let drives = c.argv.enumerated().filter { $0.element == "-drive" || $0.element == "-device" }.map { c.argv[$0.offset + 1] }
        let iso = s.url("vm/c.iso")
        #expect(drives == [
            "if=ide,index=2,media=cdrom,read-only=on,file=\(iso),format=raw",
            "if=none,id=cdrom3,media=cdrom,read-only=on", "virtio-scsi-pci,id=vmtools-scsi0", "scsi-cd,drive=cdrom3,bus=vmtools-scsi0.0",
            "if=none,id=cdrom4,media=cdrom,read-only=on,file=\(iso),format=raw", "scsi-cd,drive=cdrom4,bus=vmtools-scsi0.0",
            "file=\(s.url("vm/d1.qcow2")),format=qcow2,if=virtio,index=0,media=disk,discard=unmap,detect-zeroes=unmap",
            "file=\(s.url("vm/d2.qcow2")),format=qcow2,if=virtio,index=1,media=disk,discard=unmap,detect-zeroes=unmap",
            "file=\(s.url("vm/hdd3.qcow2")),format=qcow2,if=virtio,index=2,media=disk,discard=unmap,detect-zeroes=unmap",
            "file=\(s.url("vm/d10.qcow2")),format=qcow2,if=virtio,index=9,media=disk,discard=unmap,detect-zeroes=unmap",
        ], "\(drives)")
        #expect(c.createdFiles == [s.url("vm/hdd3.qcow2")] && s.exists("vm/hdd3.qcow2"))
        // On IDE, a third disk is an error that names the bus setting and the way out.
        values["vm_storage_hdd_interface"] = "ide"
        let ide = expectError { _ = try command(s, values, home: s.url("vm")) }
        #expect(ide?.subject == "vm_storage_hdd_interface" && ide?.message.contains("virtio") == true)
        // A createsize beside a disk the user disabled is ignored, and says so.
        let off = try command(s, ["vm_storage_hdd2_createsize": "1G", "vm_storage_hdd2_enable": "no", "vm_storage_hdd2_backend": "d2.qcow2"], home: s.url("vm"))
        #expect(off.notices.contains { $0.contains("vm_storage_hdd2_createsize=1G ignored") })
        #expect(!off.argv.contains { $0.contains("d2.qcow2") })
    }

    /// Issue 10 B8: with -n nothing is created; the notice says what would be.
    @Test(.requires("qemu-system-x86_64")) func aDryRunCreatesNoDisk() throws {
        guard requireTool("qemu-system-x86_64") != nil else { return }
        let s = Scratch()
        try s.mkdir("vm")
        let c = try command(s, ["vm_storage_hdd1_enable": "yes", "vm_storage_hdd1_backend": "new.qcow2", "vm_storage_hdd1_createsize": "16M"],
                            home: s.url("vm"), dryRun: true)
        #expect(!s.exists("vm/new.qcow2") && c.createdFiles.isEmpty)
        #expect(c.notices.contains("would create \(s.url("vm/new.qcow2")) (16M)"))
        #expect(c.argv.last?.hasPrefix("file=\(s.url("vm/new.qcow2")),format=qcow2,") == true)
    }

    @Test(.requires("qemu-system-x86_64")) func unknownModulesAndOverridesAreErrors() throws {
        guard requireTool("qemu-system-x86_64") != nil else { return }
        let s = Scratch()
        let e = expectError { _ = try command(s, ["cfg_modules_buildcmd": "qemu nosuch"]) }
        #expect(e?.message.contains("module 'nosuch' not found") == true)
        try s.write("etc/modules/buildcmd/name.inc.sh", "mod_buildcmd() { :; }\n")
        let o = expectError { _ = try command(s, [:]) }
        #expect(o?.subject == s.url("etc/modules/buildcmd/name.inc.sh"))
    }
}
