import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// Settings → QEMU arguments and launch plans, module by module
/// (Docs/ARCHITECTURE.md). Planning needs no QEMU: the binary is named by
/// an absolute cfg_qemu_cmdprefix and PATH holds nothing, so a plan that
/// ran qemu-img, probed a port or looked QEMU up would fail here.
@Suite struct BuildCmdTests {
    static let tcg = Accelerator(kind: .tcg, reason: "test", fellBack: true)
    static let kvm = Accelerator(kind: .kvm, reason: "test", fellBack: false)

    func command(_ s: Scratch, _ values: [String: String], home: String? = nil, runDirectory: String? = nil, children: [String] = [],
                 accel: Accelerator = tcg, dryRun: Bool = true, environment: [String: String] = [:]) throws -> QemuCommand {
        try s.mkdir("empty-bin")
        var g = try resolver(s).loadGlobal()
        g.settings.set("cfg_qemu_cmdprefix", "/usr/bin/qemu-system-", .commandLine("-o"))
        var settings = g.settings
        for (k, v) in values { settings.set(k, v, .commandLine("-o")) }
        if let home { settings.set("vm_home", home, .derived("test")) }
        var c = QemuCommand(settings: settings, home: home, global: g, environment: ["PATH": s.url("empty-bin"), "HOME": s.url("home")].merging(environment) { $1 },
                            accelerator: accel, children: children, dryRun: dryRun)
        if let runDirectory { c.runDirectory = runDirectory }
        try c.build(ModuleRegistry.buildcmdModules(settings, paths: s.paths))
        return c
    }

    func args(_ s: Scratch, _ values: [String: String], home: String? = nil, accel: Accelerator = tcg,
              environment: [String: String] = [:]) throws -> [String] {
        return try command(s, values, home: home, accel: accel, environment: environment).argv
    }

    /// An executor for `c`, with a console writing to `console.log` in the scratch
    /// directory, and a PATH where qemu-img and xorriso are found.
    func executor(_ s: Scratch, _ c: QemuCommand) throws -> LaunchExecutor {
        var c = c
        c.environment["PATH"] = "/usr/bin:/bin"
        let file = try s.write("console.log", "")
        let stream = OutputStream(fd: open(file, O_WRONLY | O_APPEND))
        return LaunchExecutor(c, name: "test", console: Console(command: "test", out: stream, err: stream))
    }

    /// An environment where SDL and GTK can open a window: a display server
    /// and a QEMU module directory holding their modules.
    func graphical(_ s: Scratch) throws -> [String: String] {
        for m in ["ui-sdl.so", "ui-gtk.so", "ui-curses.so"] { try s.write("qemu-modules/\(m)", "") }
        return ["DISPLAY": ":0", "QEMU_MODULE_DIR": s.url("qemu-modules")]
    }

    @Test func aVMHomeWithOneDisk() throws {
        let s = Scratch()
        try s.mkdir("vm1")
        try s.writeBytes("vm1/hdd.qcow2", [0x51, 0x46, 0x49, 0xFB, 0, 0, 0, 3])
        let argv = try args(s, ["vm_name": "vm1", "vm_networking_iface1_enable": "yes", "vm_networking_iface1_mac": "52:54:00:29:a7:c7",
                                "vm_storage_hdd1_enable": "yes", "vm_storage_hdd1_backend": s.url("vm1/hdd.qcow2")], home: s.url("vm1"))
        #expect(argv == ["/usr/bin/qemu-system-x86_64", "-usbdevice", "tablet", "-accel", "tcg", "-pidfile", s.url("vm1/qemu.pid"), "-daemonize",
                         "-boot", "order=cd", "-smp", "2", "-cpu", "max", "-display", "vnc=127.0.0.1:0,to=59635", "-vga", "std",
                         "-monitor", "unix:./monitor.sock,server=on,wait=off", "-qmp", "unix:./qmp.sock,server=on,wait=off",
                         "-name", "guest=vm1",
                         "-device", "e1000-82545em,mac=52:54:00:29:a7:c7,netdev=nd1", "-netdev", "user,id=nd1", "-m", "2G",
                         "-drive", "file=\(s.url("vm1/hdd.qcow2")),format=qcow2,if=ide,index=0,media=disk,discard=unmap,detect-zeroes=unmap"])
    }

    @Test func anISOWithoutAHome() throws {
        let s = Scratch()
        try s.writeBytes("a,b.iso", [UInt8](repeating: 0, count: 0x8001) + Array("CD001".utf8))
        let argv = try args(s, ["vm_name": "a,b.iso", "vm_boot_order": "d", "vm_storage_cdrom1_enable": "yes", "vm_storage_cdrom1_backend": s.url("a,b.iso")])
        #expect(argv.contains("-monitor") && argv[argv.firstIndex(of: "-monitor")! + 1] == "none")
        #expect(!argv.contains("-pidfile") && !argv.contains("-qmp") && !argv.contains("-serial"))
        #expect(argv.suffix(2) == ["-drive", "if=ide,index=2,media=cdrom,read-only=on,file=\(s.url("a,,b.iso")),format=raw"])
        #expect(argv[argv.firstIndex(of: "-name")! + 1] == "guest=a,,b.iso")
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
        let argv = try args(s, values, environment: try graphical(s))
        let from = try #require(argv.firstIndex { $0 == "-display" || $0 == "-chardev" })
        #expect(Array(argv[from..<(from + expected.count)]) == expected)
    }

    /// QEMU takes the first free VNC display itself (`to=`): no port is
    /// probed beforehand, so nothing can race between probe and start.
    @Test func qemuChoosesTheFreeVNCPortItself() throws {
        let s = Scratch()
        try s.mkdir("vm")
        let c = try command(s, ["vm_display_type": "vnc", "vm_name": "v"])
        #expect(c.argv.contains("vnc=127.0.0.1:0,to=59635"))
        #expect(c.notices.contains("v: listening on vnc://127.0.0.1:5900 or the next free port (vmps shows which)"))
        let from = try command(s, ["vm_display_type": "vnc", "vm_name": "v", "vm_display_portmin": "5910"])
        #expect(from.argv.contains("vnc=127.0.0.1:10,to=59635"))
        // A daemonised VM home: vmup asks QMP once QEMU runs, and says it then.
        let home = try command(s, ["vm_display_type": "vnc", "vm_name": "v"], home: s.url("vm"), dryRun: false)
        #expect(home.plan.readBack == [.vncPort(announcement: "v: listening on")] && !home.notices.contains { $0.contains("vnc://") })
        #expect(from.plan.readBack.isEmpty, "nothing started: no QMP to ask")
        // A bare boot has a QMP socket in its run-time directory: asked too.
        let bare = try command(s, ["vm_display_type": "vnc", "vm_name": "v"], runDirectory: s.url("vm"), dryRun: false)
        #expect(bare.plan.readBack == [.vncPort(announcement: "v: listening on")] && !bare.notices.contains { $0.contains("vnc://") })
        // -n says where QEMU starts looking, and that it would ask.
        let dry = try command(s, ["vm_display_type": "vnc", "vm_name": "v"], home: s.url("vm"), dryRun: true)
        #expect(dry.notices.contains("v: listening on vnc://127.0.0.1:5900 or the next free port (vmps shows which)"))
        #expect(dry.plan.dryRunLines.contains("would ask QEMU over QMP which VNC port it took"))
    }

    /// Issue 10 A6: no display server, or a QEMU without its GUI module, gets
    /// VNC on loopback instead of a start that fails.
    @Test func sdlFallsBackToVNCWhereNoWindowCanOpen() throws {
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
    @Test func aHostNameAsDisplayInterface() throws {
        let s = Scratch()
        let vnc = try command(s, ["vm_display_type": "vnc", "vm_display_iface": "localhost", "vm_name": "v"])
        #expect(vnc.argv.contains("vnc=localhost:0,to=59635"))
        // SPICE has no to=: the plan names the lowest port, the executor
        // takes the first free one right before QEMU starts.
        let spice = try command(s, ["vm_display_type": "spice", "vm_display_iface": "localhost", "vm_name": "v"], dryRun: false)
        #expect(spice.plan.preview.argv.contains("addr=localhost,port=5900,disable-ticketing=on"))
        #expect(spice.plan.preview.notices.contains("v: listening on spice://localhost:5900 (or the next free port)"))
        #expect(spice.plan.portChoices == [.init(name: "spice-port", rule: .firstFree(iface: "localhost", lowest: 5900), setting: "vm_display_iface")])
        var run = try executor(s, spice)
        try run.choosePorts()
        let arg = try #require(run.plan.argv.first { $0.hasPrefix("addr=localhost,port=") })
        let port = try #require(Int(arg.dropFirst("addr=localhost,port=".count).prefix { $0.isNumber }))
        #expect(port >= 5900 && run.plan.notices.contains("v: listening on spice://localhost:\(port)"))
        #expect(run.plan.portChoices.isEmpty)
        var bad = try executor(s, try command(s, ["vm_display_type": "spice", "vm_display_iface": "no-such-host.invalid"], dryRun: false))
        #expect(expectError { try bad.choosePorts() }?.subject == "vm_display_iface")
        // A fixed port is taken as written: nothing left to choose.
        #expect(try command(s, ["vm_display_type": "spice", "vm_display_port": "5930"], dryRun: false).plan.portChoices.isEmpty)
    }

    @Test(arguments: [
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
        let nets = argv.enumerated().filter { $0.element == "-device" || $0.element == "-netdev" }.map { argv[$0.offset + 1] }
        #expect(nets == ["e1000-82545em,mac=52:54:00:00:00:01,netdev=nd1", "user,id=nd1",
                         "e1000-82545em,mac=52:54:00:00:00:10,netdev=nd10", "user,id=nd10",
                         "virtio-net-pci,mac=52:54:00:00:00:02,netdev=nd2", "user,hostfwd=tcp:127.0.0.1:2222-:22,id=nd2"])
    }

    /// Issue 10 B1: a forward without a host address listens on loopback;
    /// 0.0.0.0 (or any address) written by the user is kept.
    @Test func portForwardsBindLoopbackUnlessAnAddressIsGiven() throws {
        #expect(NetworkingModule.loopbackForwards("user,hostfwd=tcp::2222-:22") == "user,hostfwd=tcp:127.0.0.1:2222-:22")
        #expect(NetworkingModule.loopbackForwards("user,hostfwd=::80-:80,hostfwd=udp:0.0.0.0:53-:53,net=10.0.9.0/24,hostname=a,,b")
                == "user,hostfwd=:127.0.0.1:80-:80,hostfwd=udp:0.0.0.0:53-:53,net=10.0.9.0/24,hostname=a,,b")
        #expect(NetworkingModule.loopbackForwards("user,guestfwd=tcp:10.0.2.100:1234-tcp:127.0.0.1:22") == "user,guestfwd=tcp:10.0.2.100:1234-tcp:127.0.0.1:22")
        let s = Scratch()
        let argv = try args(s, ["vm_networking_iface1_enable": "yes", "vm_networking_iface1_mac": "52:54:00:00:00:01",
                                "vm_networking_iface1_mode": "user,hostfwd=tcp::2222-:22"])
        #expect(argv.contains("user,hostfwd=tcp:127.0.0.1:2222-:22,id=nd1"))
    }

    @Test func aMACPrefixIsCompletedAtRandom() throws {
        let s = Scratch()
        let argv = try args(s, ["vm_networking_iface1_enable": "yes", "vm_networking_iface1_mac": "0a:0b:0c:"])
        let device = try #require(argv.first { $0.hasPrefix("e1000") })
        #expect(device.hasPrefix("e1000-82545em,mac=0a:0b:0c:") && device.hasSuffix(",netdev=nd1") && device.count == "e1000-82545em,mac=0a:0b:0c:00:00:00,netdev=nd1".count)
    }

    @Test func theAcceleratorDecidesCPUModelAndDropsEnableKVM() throws {
        let s = Scratch()
        let tcg = try args(s, ["vm_qemu_params": "-enable-kvm -usbdevice tablet"])
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
        let e = expectError { _ = try disk(s, "d.qcow2", children: [s.url("vm/child")]) }
        #expect(e?.message.contains("has children") == true && e?.message.contains("-s") == true)
        #expect(try disk(s, "d.qcow2", rwmode: "snap", children: [s.url("vm/child")])?.hasSuffix("snapshot=on") == true)
    }

    /// A saved createsize made the original wipe the disk at every start: never.
    @Test(.requires("qemu-img")) func createSizeCreatesOnlyMissingDisks() throws {
        let s = Scratch()
        try s.mkdir("vm")
        let values = ["vm_storage_hdd1_enable": "yes", "vm_storage_hdd1_backend": "new.qcow2", "vm_storage_hdd1_createsize": "16M"]
        let c = try command(s, values, home: s.url("vm"), dryRun: false)
        #expect(c.plan.disksToCreate == [.init(path: s.url("vm/new.qcow2"), size: "16M")])
        #expect(!s.exists("vm/new.qcow2"), "planning creates nothing")
        #expect(expectError { _ = try command(s, values.merging(["vm_storage_hdd1_createsize": "16MB"]) { $1 }, home: s.url("vm")) }?.subject == "vm_storage_hdd1_createsize")
        guard let qemuImg = requireTool("qemu-img") else { return }
        var run = try executor(s, c)
        try run.prepare()
        #expect(run.createdFiles == [s.url("vm/new.qcow2")])
        let info = try QemuImg.info(s.url("vm/new.qcow2"), backingChain: false, environment: ["PATH": "/usr/bin"])
        #expect(info["virtual-size"]?.numberValue == Double(16 << 20))
        // Put data in it; a second plan with the same createsize keeps it.
        #expect(try Subprocess(qemuImg, ["resize", "-q", s.url("vm/new.qcow2"), "32M"]).run().status == 0)
        let again = try command(s, values, home: s.url("vm"), dryRun: false)
        #expect(again.plan.disksToCreate.isEmpty)
        #expect(again.notices.contains { $0.contains("exists and is kept") })
        var rerun = try executor(s, again)
        try rerun.prepare()
        #expect(rerun.createdFiles.isEmpty)
        let after = try QemuImg.info(s.url("vm/new.qcow2"), backingChain: false, environment: ["PATH": "/usr/bin"])
        #expect(after["virtual-size"]?.numberValue == Double(32 << 20))
    }

    /// The executor undoes what it made when a later step fails.
    @Test(.requires("qemu-img")) func aFailedPreparationRemovesWhatItMade() throws {
        let s = Scratch()
        try s.mkdir("vm")
        var c = try command(s, ["vm_storage_hdd1_enable": "yes", "vm_storage_hdd1_backend": "a.qcow2", "vm_storage_hdd1_createsize": "16M"],
                            home: s.url("vm"), dryRun: false)
        c.plan.disksToCreate.append(.init(path: s.url("vm/missing/b.qcow2"), size: "16M"))
        guard requireTool("qemu-img") != nil else { return }
        var run = try executor(s, c)
        #expect(expectError { try run.prepare() }?.subject == s.url("vm/missing/b.qcow2"))
        #expect(!s.exists("vm/a.qcow2"), "the first disk is gone again")
    }

    @Test func keyboardBootMenuAndTheMacOSModule() throws {
        let s = Scratch()
        let argv = try args(s, ["vm_keyboard_mapping": "fr", "vm_boot_menu": "yes", "vm_boot_order": "", "vm_macos_osk": "key,with,commas",
                                "cfg_modules_buildcmd": "qemu boot keyboard macos"])
        #expect(Array(argv.suffix(6)) == ["-boot", "menu=on", "-k", "fr", "-device", "isa-applesmc,osk=key,,with,,commas"])
        let ordered = try args(s, ["vm_boot_order": "dc", "vm_boot_menu": "yes", "cfg_modules_buildcmd": "qemu boot"])
        #expect(Array(ordered.suffix(2)) == ["-boot", "order=dc,menu=on"])
    }

    @Test(.requires("xorriso")) func aDirectoryCDROMBecomesAGeneratedISO() throws {
        let s = Scratch()
        try s.write("vm/share/readme.txt", "hello\n")
        let c = try command(s, ["vm_storage_cdrom1_enable": "yes", "vm_storage_cdrom1_backend": "share"], home: s.url("vm"), dryRun: false)
        let iso = s.url("vm/.vmtools-share.iso")
        #expect(c.plan.generatedFiles == [.init(path: iso, kind: .isoFromDirectory(s.url("vm/share")))])
        #expect(c.argv.last == "if=ide,index=2,media=cdrom,read-only=on,file=\(iso),format=raw")
        #expect(!s.exists("vm/.vmtools-share.iso"), "planning packs nothing")
        guard requireTool("xorriso") != nil else { return }
        var run = try executor(s, c)
        try run.prepare()
        #expect(DiskImageKind.isISO(iso))
        run.rollback()
        #expect(!s.exists("vm/.vmtools-share.iso"))
    }

    /// A helper runs beside QEMU and is stopped when a foreground QEMU
    /// exits. The stand-in for QEMU waits (with a deadline) for the helper.
    @Test func helpersStopWhenAForegroundQEMUExits() throws {
        let s = Scratch()
        try s.mkdir("vm")
        var c = try command(s, ["vm_qemu_daemonize": "no"], home: s.url("vm"), dryRun: false)
        c.plan.argv = ["/bin/sh", "-c", "i=0; while [ ! -s helper.pid ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done; [ -s helper.pid ]"]
        c.plan.helpers = [.init(executable: "/bin/sh", arguments: ["-c", "echo $$ > helper.pid; exec sleep 60"])]
        var run = try executor(s, c)
        try run.start()
        let pid = try #require(Int32(try String(contentsOfFile: s.url("vm/helper.pid"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(kill(pid, 0) != 0 && errno == ESRCH, "the helper is gone")
    }

    /// Sockets a stopped QEMU left are in the plan; only the executor removes them.
    @Test func staleSocketsAreRemovedByTheExecutorOnly() throws {
        let s = Scratch()
        try s.write("vm/monitor.sock", "")
        try s.write("vm/qmp.sock", "")
        let c = try command(s, [:], home: s.url("vm"), dryRun: true)
        #expect(c.plan.filesToRemove == [s.url("vm/monitor.sock"), s.url("vm/qmp.sock")])
        #expect(c.plan.dryRunLines.contains("would remove the stale socket \(s.url("vm/qmp.sock"))"))
        #expect(s.exists("vm/monitor.sock") && s.exists("vm/qmp.sock"))
        var run = try executor(s, c)
        try run.prepare()
        #expect(!s.exists("vm/monitor.sock") && !s.exists("vm/qmp.sock"))
    }

    /// vm.settings(5), GUEST AGENT: the agent's port on its own controller,
    /// a relative socket; auto follows cloud-init; no run directory, no channel.
    @Test func theGuestAgentChannel() throws {
        let s = Scratch()
        try s.mkdir("vm")
        try s.write("vm/qga.sock", "")
        let expected = ["-chardev", "socket,id=qga0,path=./qga.sock,server=on,wait=off", "-device", "virtio-serial-pci,id=qgaserial0",
                        "-device", "virtserialport,bus=qgaserial0.0,chardev=qga0,name=org.qemu.guest_agent.0"]
        let c = try command(s, ["vm_guestagent_enable": "yes"], home: s.url("vm"))
        let from = try #require(c.argv.firstIndex(of: "-chardev"))
        #expect(Array(c.argv[from..<(from + expected.count)]) == expected)
        #expect(c.argv[from - 2] == "-qmp")
        #expect(c.plan.filesToRemove.contains(s.url("vm/qga.sock")))
        #expect(!(try args(s, [:], home: s.url("vm"))).contains("-chardev"))
        let cloud = ["vm_cloudinit_enable": "yes", "vm_cloudinit_sshkey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f test"]
        #expect(!(try args(s, cloud.merging(["vm_guestagent_enable": "no"]) { $1 }, home: s.url("vm"))).contains(expected[1]))
        #expect((try args(s, cloud.merging(["vm_guestagent_enable": "auto"]) { $1 }, home: s.url("vm"))).contains(expected[1]))
        #expect(!(try args(s, ["vm_guestagent_enable": "yes"])).contains(expected[1]))
        let e = expectError { _ = try command(s, ["vm_guestagent_enable": "maybe"], home: s.url("vm")) }
        #expect(e?.subject == "vm_guestagent_enable", "\(String(describing: e))")
        #expect(e?.description.contains("expected auto, yes or no") == true, "\(String(describing: e))")
    }

    @Test func anEnabledEmptyCDROMDrive() throws {
        let s = Scratch()
        let argv = try args(s, ["vm_storage_cdrom2_enable": "yes"])
        #expect(argv.suffix(2) == ["-drive", "if=ide,index=3,media=cdrom,read-only=on"])
    }

    @Test func foregroundModeMuxesSerialAndMonitorOnTheTerminal() throws {
        let s = Scratch()
        try s.mkdir("vm")
        let argv = try args(s, ["vm_qemu_daemonize": "no"], home: s.url("vm"))
        #expect(!argv.contains("-daemonize") && !argv.contains("-monitor"))
        #expect(argv.contains("stdio,id=console0,mux=on,signal=off"))
        #expect(argv.contains("-mon"))
        let logged = try args(s, ["vm_qemu_daemonize": "no", "vm_serial_log": "yes"], home: s.url("vm"))
        #expect(logged.contains("stdio,id=console0,mux=on,signal=off,logfile=./serial.log"))
    }

    /// Issue 10 A3: the serial log is asked for; without it nothing names a
    /// file in the VM home for the console.
    @Test func theSerialLogIsASetting() throws {
        let s = Scratch()
        try s.mkdir("vm")
        let off = try args(s, [:], home: s.url("vm"))
        #expect(!off.contains("-serial") && !off.contains { $0.contains("serial.log") })
        let on = try args(s, ["vm_serial_log": "yes"], home: s.url("vm"))
        #expect(on.contains("file:./serial.log"))
        #expect(!(try args(s, ["vm_serial_log": "yes"])).contains("-serial"), "a bare boot has no home to keep a log in")
    }

    /// Issue 10 C6: any number of disks on virtio, CD-ROMs 3 and up on
    /// virtio-scsi, and a createsize alone makes a disk.
    @Test func moreThanTwoDisksAndCDROMs() throws {
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
        #expect(c.plan.disksToCreate == [.init(path: s.url("vm/hdd3.qcow2"), size: "16M")] && !s.exists("vm/hdd3.qcow2"))
        #expect(c.plan.settingsToSave.map { "\($0.name)=\($0.value)" }
                == ["vm_storage_hdd3_backend=hdd3.qcow2", "vm_storage_hdd3_enable=yes", "vm_storage_hdd3_createsize="])
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
    @Test func aDryRunCreatesNoDisk() throws {
        let s = Scratch()
        try s.mkdir("vm")
        let c = try command(s, ["vm_storage_hdd1_enable": "yes", "vm_storage_hdd1_backend": "new.qcow2", "vm_storage_hdd1_createsize": "16M"],
                            home: s.url("vm"), dryRun: true)
        #expect(!s.exists("vm/new.qcow2") && c.plan.disksToCreate == [.init(path: s.url("vm/new.qcow2"), size: "16M")])
        #expect(c.plan.dryRunLines.contains("would create \(s.url("vm/new.qcow2")) (16M)"))
        // Told in module order: after the display's notice, as the README shows.
        let told = c.plan.notices(withDisks: LaunchPlan.wouldCreate)
        #expect(told.count == 2 && told.first?.contains("vnc://") == true && told.last == "would create \(s.url("vm/new.qcow2")) (16M)", "\(told)")
        #expect(c.argv.last?.hasPrefix("file=\(s.url("vm/new.qcow2")),format=qcow2,") == true)
    }

    @Test func unknownModulesAndOverridesAreErrors() throws {
        let s = Scratch()
        let e = expectError { _ = try command(s, ["cfg_modules_buildcmd": "qemu nosuch"]) }
        #expect(e?.message.contains("module 'nosuch' not found") == true)
        try s.write("etc/modules/buildcmd/name.inc.sh", "mod_buildcmd() { :; }\n")
        let o = expectError { _ = try command(s, [:]) }
        #expect(o?.subject == s.url("etc/modules/buildcmd/name.inc.sh"))
    }
}
