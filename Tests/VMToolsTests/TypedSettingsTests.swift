import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// `VMSettings`, the typed view of the settings the built-in code reads: each
/// kind of value parses, a bad one names the setting and the `file:line` it
/// came from, validation stays lazy, and setting names are not spelled out
/// outside the settings layer (Docs/ARCHITECTURE.md, "How to add a setting").
@Suite struct TypedSettingsTests {
    static let file = "/vms/web/vm.settings"

    /// The defaults, with `values` written at lines 1, 2, … of a VM's file.
    func view(_ values: [(String, String)]) -> VMSettings {
        var t = SettingsTable()
        for d in Defaults.values { t.set(d.name, d.value, .builtin) }
        for (i, (name, value)) in values.enumerated() { t.set(name, value, .vmFile(path: Self.file, line: i + 1, depth: 0)) }
        return VMSettings(t)
    }

    @Test func theDefaultsParse() throws {
        let v = view([])
        #expect(try v.ramSize() == Size("2G", units: "MG"))
        #expect(try v.ramSize()?.mebibytes == 2048)
        #expect(try v.cpuCount() == 2)
        #expect(try v.cpuType() == "host")
        #expect(try v.bootOrder() == "cd")
        #expect(!v.bootMenu)
        #expect(try v.serialLog() == false)
        #expect(try v.displayType() == .sdl)
        #expect(try v.displayDevice() == "std")
        #expect(try v.displayIface() == "127.0.0.1")
        #expect(try v.displayPort() == nil)
        #expect(v.lowestDisplayPort == 5900)
        #expect(try v.qemuAccel() == .auto)
        #expect(try v.qemuArch() == "x86_64")
        #expect(try v.qemuParams() == ["-usbdevice", "tablet"])
        #expect(v.daemonize)
        #expect(!v.qemuCompress)
        #expect(v.shutdownTimeout == 20)
        #expect(try v.rwMode() == .rw)
        #expect(try v.hddInterface() == .ide)
        #expect(v.hddSlots == [1, 2])
        #expect(v.cdromSlots == [1, 2])
        #expect(v.nicIDs.isEmpty)
        #expect(v.defaultMACPrefix == "52:54:00")
        #expect(v.includeUserHome)
        #expect(v.qemuCommandPrefix == "qemu-system-")
        #expect(!v.assumeYes)
        #expect(v.verbosity == 2)
        #expect(v.nestingLimit == 100)
        #expect(v.waitLockSeconds == 10)
        #expect(try v.moduleList("cfg_modules_clone") == ["networking_iface_mac", "storage_backend", "cloudinit_identity"])
        #expect(try v.moduleList("vm_modules_buildcmd") == [])
        #expect(try !v.guestAgentEnabled())
        #expect(try view([("vm_cloudinit_enable", "yes")]).guestAgentEnabled())
        #expect(try view([("vm_guestagent_enable", "yes")]).guestAgentEnabled())
        #expect(try !view([("vm_cloudinit_enable", "yes"), ("vm_guestagent_enable", "no")]).guestAgentEnabled())
    }

    @Test func eachKindOfValueParses() throws {
        let v = view([
            ("vm_ram_size", "1536M"), ("vm_cpu_count", "8"), ("vm_boot_order", ""), ("vm_boot_menu", "yes"), ("vm_serial_log", "yes"),
            ("vm_display_type", "spice"), ("vm_display_portmin", "3000"), ("vm_display_port", "3001"), ("vm_display_device", "none"),
            ("vm_qemu_accel", "tcg"), ("vm_qemu_params", "-append 'a b,c'"), ("vm_qemu_daemonize", "no"), ("vm_qemu_shutdown_timeout", "5"),
            ("vm_storage_rwmode", "snap"), ("vm_storage_hdd_interface", "virtio"),
            ("vm_storage_hdd10_backend", "/d/ten.qcow2"), ("vm_storage_hdd10_enable", "yes"), ("vm_storage_hdd010_backend", "/x"),
            ("vm_storage_hdd3_createsize", "1T"), ("vm_storage_cdrom3_backend", "ro:/i.iso"), ("vm_storage_cdrom3_enable", "yes"),
            ("vm_networking_iface2_enable", "yes"), ("vm_networking_iface10_enable", "yes"), ("vm_networking_iface1_enable", "no"),
            ("vm_networking_iface2_device", "virtio-net-pci"), ("vm_networking_iface2_mac", "52:54:00:12:34:56"),
            ("cfg_ui_verbosity", "4"), ("cfg_limit_nesting", "0"), ("cfg_ui_assumeyes", "yes"),
        ])
        #expect(try v.ramSize()?.text == "1536M")
        #expect(try v.ramSize()?.mebibytes == 1536)
        #expect(try v.cpuCount() == 8)
        #expect(try v.bootOrder() == "")
        #expect(v.bootMenu)
        #expect(try v.serialLog())
        #expect(try v.displayType() == .spice)
        #expect(try v.displayDevice() == "none")
        #expect(v.lowestDisplayPort == 3000)  // SPICE may go below VNC's 5900
        #expect(try v.displayPort() == 3001)
        #expect(try v.qemuAccel() == .tcg)
        #expect(try v.qemuParams() == ["-append", "a b,c"])
        #expect(!v.daemonize)
        #expect(v.shutdownTimeout == 5)
        #expect(try v.rwMode() == .snap)
        #expect(try v.hddInterface() == .virtio)
        // Numeric order; a number with a leading zero is no slot.
        #expect(v.hddSlots == [1, 2, 3, 10])
        #expect(v.hdd(10).backend == "/d/ten.qcow2" && v.hdd(10).enabled)
        #expect(v.hdd(10).keys.createsize == "vm_storage_hdd10_createsize")
        #expect(try v.hdd(3).createsize()?.text == "1T")
        #expect(try v.hdd(3).createsize()?.mebibytes == 1 << 20)
        #expect(v.hdd(3).isRequestedByCreatesize)
        #expect(!v.hdd(10).isRequestedByCreatesize)
        #expect(v.cdromSlots == [1, 2, 3])
        #expect(v.cdrom(3).enabled && v.cdrom(3).backend == "ro:/i.iso")
        // Bytewise order of the numbers as text, as the original.
        #expect(v.nicIDs == ["1", "10", "2"])
        #expect(!v.nic("1").enabled && v.nic("2").enabled)
        #expect(try v.nic("2").device() == "virtio-net-pci")
        #expect(try v.nic("10").device() == "e1000-82545em")  // the default
        #expect(v.nic("10").deviceSetting == "vm_networking_default_device")
        #expect(v.nic("10").mode == "user")
        #expect(try v.nic("2").mac() == "52:54:00:12:34:56")
        #expect(v.nic("10").macSetting == "vm_networking_default_mac")
        #expect(try v.nic("10").mac().hasPrefix("52:54:00:"))
        #expect(v.nic("3").isUnset && !v.nic("1").isUnset)
        #expect(v.verbosity == 4)
        #expect(v.nestingLimit == 100)  // 0 is below the minimum: the fallback
        #expect(v.assumeYes)
    }

    /// Names QEMU reads in its option syntax take what real ones look like.
    @Test func qemuNamesTakeRealValues() throws {
        for cpu in ["host", "max", "Haswell,-hle,+avx2", "host,kvm=off", "EPYC-v2", ""] {
            #expect(try view([("vm_cpu_type", cpu)]).cpuType() == cpu)
        }
        for iface in ["127.0.0.1", "::1", "[::1]", "0.0.0.0", "localhost", "vm-host.example.org", "unix", ""] {
            #expect(try view([("vm_display_iface", iface)]).displayIface() == iface)
        }
        for map in ["fr", "en-us", "de-ch", ""] { #expect(try view([("vm_keyboard_mapping", map)]).keyboardMapping() == map) }
        for nic in ["e1000", "virtio-net-pci", "rtl8139", "vmxnet3", "e1000-82545em"] {
            #expect(try view([("vm_networking_iface1_device", nic)]).nic("1").device() == nic)
        }
    }

    /// Every validated accessor: a bad value throws `NAME: 'VALUE' (from FILE:LINE): why`.
    @Test(arguments: [
        ("vm_ram_size", "2GB", "expected a size such as 512M or 2G"),
        ("vm_ram_size", "G", "expected a size such as 512M or 2G"),
        ("vm_ram_size", "1T", "expected a size such as 512M or 2G"),
        ("vm_cpu_count", "0", "expected a positive number"),
        ("vm_cpu_count", "٣", "expected a positive number"),
        ("vm_boot_order", "cz", "boot order letters are a, b, c, d, n, o, p"),
        ("vm_serial_log", "maybe", "expected yes or no"),
        ("vm_display_type", "curses", "expected sdl, gtk, vnc, spice or none"),
        ("vm_display_device", "cg3", "a SPARC-only card; x86 guests cannot use it"),
        ("vm_display_port", "5800", "expected a port from 5900 to 65535"),
        ("vm_qemu_accel", "hvf", "expected auto, kvm or tcg"),
        ("vm_qemu_arch", "x86 64", "letters, digits and _ only"),
        ("vm_qemu_params", "-append 'open", "not a properly quoted list of arguments"),
        ("vm_storage_rwmode", "rx", "expected rw, snap or ro"),
        ("vm_storage_hdd_interface", "scsi", "expected ide or virtio"),
        ("vm_storage_hdd2_createsize", "40GB", "expected a size such as 512M, 40G or 1T"),
        ("vm_networking_iface1_mac", "01:00", ""),
        ("vm_modules_buildcmd", "macos 'x", "not a properly quoted list of module names"),
        ("vm_guestagent_enable", "on", "expected auto, yes or no"),
        // Values that reach QEMU's option syntax: names only (issue 22).
        ("vm_networking_iface1_device", "e1000,romfile=/etc/hostname", "expected a QEMU network device name such as e1000 or virtio-net-pci"),
        ("vm_networking_default_device", "x=y", "expected a QEMU network device name such as e1000 or virtio-net-pci"),
        ("vm_cpu_type", "host,romfile=/etc/hostname", "expected a CPU model and optional features"),
        ("vm_cpu_type", ",id=z", "expected a CPU model and optional features"),
        ("vm_keyboard_mapping", "/etc/hostname", "expected a QEMU keymap name such as fr or en-us"),
        ("vm_display_device", "std,romfile=x", "expected a QEMU graphics card name such as std, qxl or virtio"),
        ("vm_display_iface", "unix:/tmp/x", "expected unix, a host name or an IP address such as 127.0.0.1 or ::1"),
    ])
    func aBadValueNamesTheSettingAndItsFileLine(_ name: String, _ value: String, _ why: String) throws {
        let v = view([("vm_cpu_type", "max"), (name, value)])
        let e = expectError {
            switch name {
            case "vm_ram_size": _ = try v.ramSize()
            case "vm_cpu_count": _ = try v.cpuCount()
            case "vm_boot_order": _ = try v.bootOrder()
            case "vm_serial_log": _ = try v.serialLog()
            case "vm_display_type": _ = try v.displayType()
            case "vm_display_device": _ = try v.displayDevice()
            case "vm_display_port": _ = try v.displayPort()
            case "vm_qemu_accel": _ = try v.qemuAccel()
            case "vm_qemu_arch": _ = try v.qemuArch()
            case "vm_qemu_params": _ = try v.qemuParams()
            case "vm_storage_rwmode": _ = try v.rwMode()
            case "vm_storage_hdd_interface": _ = try v.hddInterface()
            case "vm_storage_hdd2_createsize": _ = try v.hdd(2).createsize()
            case "vm_networking_iface1_mac": _ = try v.nic("1").mac()
            case "vm_modules_buildcmd": _ = try v.moduleList(name)
            case "vm_guestagent_enable": _ = try v.guestAgentEnabled()
            case "vm_networking_iface1_device", "vm_networking_default_device": _ = try v.nic("1").device()
            case "vm_cpu_type": _ = try v.cpuType()
            case "vm_keyboard_mapping": _ = try v.keyboardMapping()
            case "vm_display_iface": _ = try v.displayIface()
            default: Issue.record("no accessor for \(name)")
            }
        }
        #expect(e?.subject == name)
        #expect(e?.message.hasPrefix("'\(value)' (from \(Self.file):2): \(why)") == true, "\(String(describing: e))")
        #expect(e?.code == .failure)
    }

    /// A bad value fails only the accessor that reads it: a module that is
    /// off never trips over its settings.
    @Test func validationIsLazy() throws {
        let v = view([("vm_ram_size", "lots"), ("vm_display_type", "curses"), ("vm_storage_rwmode", "rx")])
        #expect(try v.cpuCount() == 2)
        #expect(try v.bootOrder() == "cd")
        #expect(try v.hdd(1).createsize() == nil)
        #expect(throws: VMToolsError.self) { try v.ramSize() }
        // Built for real: without the ram, display and storage_hdd modules, the same settings build.
        let s = Scratch()
        var g = try resolver(s).loadGlobal()
        g.settings.set("cfg_qemu_cmdprefix", "/usr/bin/qemu-system-", .commandLine("-o"))
        var c = QemuCommand(settings: v.table, home: nil, global: g, environment: [:], accelerator: BuildCmdTests.tcg, dryRun: true)
        try c.build([QemuModule.self, CpuModule.self, BootModule.self] as [any BuildCmdModule.Type])
        #expect(c.argv.contains("-smp"))
        #expect(throws: VMToolsError.self) { try c.build([RamModule.self] as [any BuildCmdModule.Type]) }
    }

    /// `cfg_host_paths` (vm.settings(5), HOST PATHS): absolute paths separated
    /// by colons, real paths once read; a relative entry names the setting.
    @Test func hostPathsAllowList() throws {
        let s = Scratch()
        try s.mkdir("real")
        try FileManager.default.createSymbolicLink(atPath: s.url("link"), withDestinationPath: s.url("real"))
        var g = try resolver(s).loadGlobal()
        #expect(try g.hostPathAllowList() == [])
        g.settings.set("cfg_host_paths", "\(s.url("link"))::/nonexistent/x", .commandLine("-o"))
        #expect(try g.hostPathAllowList() == [s.url("real"), "/nonexistent/x"])
        g.settings.set("cfg_host_paths", "/a:b", .commandLine("-o"))
        #expect(expectError { _ = try g.hostPathAllowList() }?.description
            == "cfg_host_paths: '/a:b' (from command line (-o)): 'b' is not an absolute path (colon-separated absolute paths)")
    }

    /// `cfg_images_mirror` (vmtools(7), IMAGE CATALOG): `FROM=TO` prefix
    /// rewrites; a malformed rule names the setting and where it was set.
    @Test func imagesMirrorRules() throws {
        var g = try resolver(Scratch()).loadGlobal()
        #expect(try g.imageMirror() == ImageMirror())
        g.settings.set("cfg_images_mirror", "https://a.org/=http://127.0.0.1:9/a/", .commandLine("-o"))
        #expect(try g.imageMirror().rewrite("https://a.org/x.img") == "http://127.0.0.1:9/a/x.img")
        g.settings.set("cfg_images_mirror", "https://a.org/", .commandLine("-o"))
        #expect(expectError { _ = try g.imageMirror() }?.description
            == "cfg_images_mirror: 'https://a.org/' (from command line (-o)): 'https://a.org/': expected FROM=TO (two URL prefixes)")
    }

    /// A number that does not parse falls back to its default from the
    /// table (issue 23, item 5), the value vmtools.conf ships, not to a
    /// literal of the accessor's own.
    @Test func unreadableNumbersFallBackToTheDefaultsTable() throws {
        let bad = view([(SettingKey.verbosity, "loud"), (SettingKey.limitNesting, "0"), (SettingKey.limitWaitLock, "soon"),
                        (SettingKey.qemuShutdownTimeout, "-1"), (SettingKey.displayPortMin, "low")])
        func number(_ key: String) -> Int? { Defaults.value(key).flatMap { Int($0) } }
        #expect(bad.verbosity == number(SettingKey.verbosity))
        #expect(bad.nestingLimit == number(SettingKey.limitNesting))
        #expect(bad.waitLockSeconds == number(SettingKey.limitWaitLock))
        #expect(bad.shutdownTimeout == number(SettingKey.qemuShutdownTimeout))
        #expect(bad.lowestDisplayPort == number(SettingKey.displayPortMin))
        // The values as shipped, so that a changed table is a visible change.
        let shipped: [Int] = [bad.verbosity, bad.nestingLimit, bad.waitLockSeconds, bad.shutdownTimeout, bad.lowestDisplayPort]
        #expect(shipped == [2, 100, 10, 20, 5900])
        #expect(Defaults.value("vm_no_such_setting") == nil)
    }

    /// The same error through the binary, naming the VM's file and line.
    @Test func vmupNamesTheFileAndLineOfABadValue() throws {
        let cli = try CLI(Scratch())
        try cli.scratch.write("web/vm.settings", "vm_name=web\nvm_cpu_type=max\nvm_cpu_count=many\n")
        // An absolute QEMU is taken as written: the plan needs no QEMU installed.
        let r = try cli.run("vmup", ["-n", "-o", "cfg_qemu_cmdprefix=/usr/bin/qemu-system-", cli.scratch.url("web")])
        #expect(r.status == 1, "\(r.err)")
        #expect(r.err.contains("vm_cpu_count: 'many' (from "), "\(r.err)")
        #expect(r.err.contains("/web/vm.settings:3): expected a positive number"), "\(r.err)")
        #expect(r.err.split(separator: "\n").count == 1, "\(r.err)")
    }

    /// cfg_images_overlay and the vm_image_* record (vm.settings(5), IMAGES BY NAME).
    @Test func theImageSettingsParse() throws {
        #expect(try view([]).imagesOverlay())
        #expect(try !view([("cfg_images_overlay", "no")]).imagesOverlay())
        let e = expectError { _ = try view([("cfg_images_overlay", "thin")]).imagesOverlay() }
        #expect(e?.description == "cfg_images_overlay: 'thin' (from \(Self.file):1): expected yes or no")
        #expect(view([]).imageOrigin == nil)
        let origin = view([("vm_image_name", "debian-12"), ("vm_image_url", "https://x.example/d.qcow2"), ("vm_image_digest", "sha256:ab")]).imageOrigin
        #expect(origin == ImageOrigin(name: "debian-12", url: "https://x.example/d.qcow2", digest: "sha256:ab"))
    }

    /// `vm_snapshot_auto` (vm.settings(5), AUTOMATIC SNAPSHOTS): a list of merge and grow.
    @Test func theSnapshotAutoListParses() throws {
        #expect(try view([]).snapshotAuto().isEmpty)
        #expect(try view([("vm_snapshot_auto", "merge")]).snapshotAuto() == [.merge])
        #expect(try view([("vm_snapshot_auto", " grow\tmerge grow ")]).snapshotAuto() == [.merge, .grow])
        let e = expectError { _ = try view([("vm_snapshot_auto", "merge,grow")]).snapshotAuto() }
        #expect(e?.description == "vm_snapshot_auto: 'merge,grow' (from \(Self.file):1): expected a space-separated list of merge and grow")
    }

    /// Setting names live in the settings layer (Docs/ARCHITECTURE.md): any
    /// other file names a setting through `SettingKey` or `VMSettings`, never
    /// a literal. The bare prefixes `"vm_"` and `"cfg_"` (a setting's kind)
    /// are fine anywhere.
    @Test func settingNamesAreNotSpelledOutOutsideTheSettingsLayer() throws {
        let allowed: [String: String] = [
            "VMToolsCore/Settings/Defaults.swift": "the compiled-in defaults",
            "VMToolsCore/Settings/SettingKey.swift": "SettingKey: the names the typed view reads",
            "VMToolsCore/Settings/DisksSettings.swift": "SettingKey and VMSettings: disks and direct kernel boot",
            "VMToolsCore/Settings/VMFileNames.swift": "the typed file names (cfg_file_*)",
            "VMToolsCore/Settings/SettingsResolver.swift": "the resolver: precedence, cfg_include_userhome, eager cfg_limit_* checks",
            "VMToolsCore/Settings/SettingsDocument.swift": "the writer: the order and grouping of a written vm.settings",
            "VMToolsCore/Settings/VMSettingsFile.swift": "the vm.settings reader (vm_home may not be set in a file)",
            "VMToolsCore/Settings/SettingsText.swift": "SettingName: the shapes of numbered setting names",
            "VMToolsCore/Settings/ForwardSettings.swift": "SettingKey of forwards, cfg_limit_waitguest and what ssh.config reads",
            "VMToolsCore/Settings/CloudInitSettings.swift": "SettingKey and VMSettings of cloud-init, vm_uuid, vm_install_*",
            "VMToolsCore/Settings/USBSettings.swift": "SettingKey and VMSettings of host USB devices (vm_usbN_device)",
            "VMToolsCore/Settings/FirmwareSettings.swift": "SettingKey and VMSettings of the firmware and the TPM (vm_firmware, vm_tpm)",
            "VMToolsCore/Settings/DisplaySettings.swift": "SettingKey and VMSettings of the display's clipboard, password, socket, full screen",
            "VMToolsCore/Settings/GuestAgentSettings.swift": "SettingKey and VMSettings of the guest agent channel (vm_guestagent_enable)",
            "VMToolsCore/Settings/ShareSettings.swift": "SettingKey, SettingName and VMSettings of shared folders (vm_shareN_*)",
            "VMToolsCore/Settings/HostPathSettings.swift": "SettingKey and the allow list of host paths (cfg_host_paths)",
        ]
        let root = Repo.root + "/Sources/"
        let literal = try Regex(#""(vm|cfg)_[A-Za-z0-9]"#)
        var offenders: [String] = []
        var checked = 0
        for target in ArchitectureTests.layers where target != "CSystem" {
            for file in try ArchitectureTests.swiftFiles(in: target) {
                let relative = String(file.dropFirst(root.count))
                checked += 1
                guard allowed[relative] == nil else { continue }
                let text = try String(contentsOfFile: file, encoding: .utf8)
                for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
                where !line.trimmingCharacters(in: .whitespaces).hasPrefix("//") && line.contains(literal) {
                    offenders.append("\(relative):\(i + 1): \(line.trimmingCharacters(in: .whitespaces))")
                }
            }
        }
        #expect(checked > 90)
        #expect(offenders.isEmpty, "use SettingKey or VMSettings:\n\(offenders.joined(separator: "\n"))")
        for path in allowed.keys { #expect(FileManager.default.fileExists(atPath: root + path), "\(path) is gone: drop it from the list") }
    }
}
