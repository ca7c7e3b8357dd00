import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// Issue 10, the command-line builders seen from vmup: image prefixes,
/// `-n` without side effects, and boots that check what the host and the
/// guest see (loopback forwards, the VNC fallback, a home left as it was,
/// more than two disks).
@Suite(.serialized) struct StartCommandLineTests {
    func iso(_ s: Scratch, _ rel: String) throws -> String {
        try s.writeBytes(rel, [UInt8](repeating: 0, count: 0x8001) + Array("CD001".utf8))
    }

    /// A2: a CD-ROM takes ro: only; rw: and snap: fail with one line naming
    /// the file, from an operand or from -d; invalid: is part of a file name.
    @Test(.requires("qemu-system-x86_64")) func aCDROMRefusesWritablePrefixes() throws {
        guard requireTool("qemu-system-x86_64") != nil else { return }
        let s = Scratch()
        let cli = try CLI(s)
        let disc = try iso(s, "disc.iso")
        try s.write("vm/vm.settings", "vm_name=vm\n")
        for prefix in ["rw:", "snap:"] {
            for args in [["-n", "-y", prefix + disc], ["-n", "-y", "-d", prefix + disc, s.url("vm")]] {
                let r = try cli.run("vmup", args)
                #expect(r.status == 1, "\(args): \(r.err)")
                #expect(r.err.split(separator: "\n").count == 1 && r.err.contains(disc) && r.err.contains("CD-ROM"), "\(args): \(r.err)")
            }
        }
        let ro = try cli.run("vmup", ["-n", "-y", "ro:" + disc])
        #expect(ro.status == 0, "\(ro.err)")
        let bad = try cli.run("vmup", ["-n", "-y", "invalid:" + disc])
        #expect(bad.status == 1 && bad.err.contains("invalid:" + disc) && bad.err.contains("no such file"), "\(bad.err)")
        let badDisk = try cli.run("vmup", ["-n", "-y", "-c", "invalid:" + disc, s.url("vm")])
        #expect(badDisk.status == 1 && badDisk.err.contains("invalid:"), "\(badDisk.err)")
    }

    /// B8: vmup -n creates nothing; it says what a start would create.
    /// Issue 11: it prints the plan: sockets it would remove, ISOs it would
    /// pack, what it would read back, choose and record.
    @Test(.requires("qemu-img", "qemu-system-x86_64")) func vmupDryRunCreatesNoDisk() throws {
        guard requireTool("qemu-system-x86_64") != nil, requireTool("qemu-img") != nil else { return }
        let s = Scratch()
        let cli = try CLI(s)
        try s.write("vm/vm.settings", "vm_name=vm\nvm_storage_hdd1_enable=yes\nvm_storage_hdd1_backend=new.qcow2\nvm_storage_hdd1_createsize=16M\nvm_storage_hdd3_createsize=8M\n"
                    + "vm_storage_cdrom1_enable=yes\nvm_storage_cdrom1_backend=share\nvm_display_type=vnc\n")
        try s.write("vm/share/readme.txt", "hello\n")
        try s.write("vm/monitor.sock", "")
        try s.write("vm/qmp.sock", "")
        let before = try FileManager.default.contentsOfDirectory(atPath: s.url("vm")).sorted()
        let r = try cli.run("vmup", ["-n", "-o", "vm_storage_hdd_interface=virtio", s.url("vm")])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("would create \(s.url("vm/new.qcow2")) (16M)") && r.err.contains("would create \(s.url("vm/hdd3.qcow2")) (8M)"), "\(r.err)")
        for line in ["would remove the stale socket \(s.url("vm/monitor.sock"))", "would remove the stale socket \(s.url("vm/qmp.sock"))",
                     "would pack \(s.url("vm/share")) into \(s.url("vm/.vmtools-share.iso")) (an ISO for QEMU)",
                     "would ask QEMU over QMP which VNC port it took",
                     "would record vm_storage_hdd3_backend=hdd3.qcow2 in the VM's settings"] {
            #expect(r.err.contains(line), "\(line): \(r.err)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.url("vm")).sorted() == before)
        let spice = try cli.run("vmup", ["-n", "-o", "vm_storage_hdd_interface=virtio", "-o", "vm_display_type=spice", s.url("vm")])
        #expect(spice.status == 0 && spice.err.contains("would choose the first free SPICE port from 5900 on 127.0.0.1"), "\(spice.err)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.url("vm")).sorted() == before)
        // -c takes a free slot: not one a createsize alone asks a new disk for.
        try s.write("small/vm.settings", "vm_name=small\nvm_storage_hdd1_createsize=16M\nvm_storage_hdd3_createsize=8M\n")
        let img = try s.write("extra.img", "")
        let c = try cli.run("vmup", ["-n", "-v", "-c", img, "-o", "vm_storage_hdd_interface=virtio", s.url("small")])
        #expect(c.status == 0, "\(c.err)")
        #expect(c.err.contains("would create \(s.url("small/hdd1.qcow2")) (16M)") && c.err.contains("would create \(s.url("small/hdd3.qcow2")) (8M)"), "\(c.err)")
        #expect(c.out.contains("file=\(img)"), "\(c.out)")
    }

    /// A6: vmcreate -y on a host without a display starts the new VM on VNC
    /// instead of failing and rolling it back. (No guest: nothing to boot.)
    @Test(.requires("qemu-system-x86_64")) func vmcreateOnAHeadlessHostKeepsTheVM() throws {
        guard requireTool("qemu-system-x86_64") != nil else { return }
        let s = Scratch()
        let cli = try CLI(s)
        try s.write("etc/vmtools.conf", "vm_ram_size=64M\nvm_cpu_count=1\nvm_qemu_shutdown_timeout=1\n")
        let home = s.url("new")
        let r = try cli.run("vmcreate", ["-y", "-o", "vm_storage_hdd1_createsize=0", home])
        defer { _ = try? cli.run("vmdown", ["-k", home]) }
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("using VNC instead of SDL on vnc://127.0.0.1:"), "\(r.err)")
        #expect(s.exists("new/vm.settings"))
        #expect(try cli.run("vmps", ["-r", "-o", "d", "-d", home]).out.hasPrefix("vnc://127.0.0.1:"))
        #expect(try cli.run("vmdown", ["-k", home]).status == 0)
    }

    /// C6: vmcreate with a createsize alone for disk 3 makes the disk and
    /// saves it as part of the VM.
    @Test(.requires("qemu-img", "qemu-system-x86_64")) func vmcreateSavesADiskMadeFromASizeAlone() throws {
        guard requireTool("qemu-system-x86_64") != nil, requireTool("qemu-img") != nil else { return }
        let s = Scratch()
        let cli = try CLI(s)
        let r = try cli.run("vmcreate", ["-n", "-y", "-o", "vm_storage_hdd1_createsize=0", "-o", "vm_storage_hdd_interface=virtio",
                                         "-o", "vm_storage_hdd3_createsize=8M", s.url("vm")])
        #expect(r.status == 0, "\(r.err)")
        #expect(s.exists("vm/hdd3.qcow2"))
        let f = try VMSettingsFile.read(s.url("vm/vm.settings"))
        #expect(f.value("vm_storage_hdd3_backend") == "hdd3.qcow2" && f.value("vm_storage_hdd3_enable") == "yes", "\((try? s.read("vm/vm.settings")) ?? "")")
    }

    /// Listening TCP sockets, from `ss -ltn`: local address:port.
    func listening() throws -> [String] {
        guard let ss = requireTool("ss") else { return [] }
        let r = try Subprocess(ss, ["-ltnH"]).run()
        return r.stdoutText.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            return f.count >= 4 ? String(f[3]) : nil
        }
    }

    /// A free loopback port, for a forward (the kernel's pick).
    func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// A3 + A6 + B1 in one boot: the default SDL display on a host without
    /// one becomes VNC on loopback at a port QEMU chose (5900 is held here,
    /// so it must look further) and vmup, vmps and vminfo say which; a
    /// forward without an address listens on 127.0.0.1 only; and the home
    /// holds the same files after the boot and vmdown as before.
    @Test(.requiresGuest, .requires("ss")) func aDefaultBootOnAHeadlessHost() throws {
        guard let lab = try BootLab.guest(), requireTool("ss") != nil else { return }
        let fwd = freePort()
        let home = try lab.makeVM("quiet", "vm_serial_log=no\nvm_display_type=sdl\nvm_display_device=std\nvm_networking_iface1_mode='user,hostfwd=tcp::\(fwd)-:80'")
        // A raw -netdev mode in the VM's own file: the user accepts it (vm.settings(5), HOST PATHS).
        try #require(try lab.cli.run("vmfix", ["-H", home]).status == 3)
        // Hold 5900 (if nobody else does): QEMU must take another display, not fail.
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(holder) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(5900).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        // Another QEMU of a parallel test may hold it now and free it before ours looks.
        let held = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
        _ = listen(holder, 1)

        let before = try FileManager.default.contentsOfDirectory(atPath: home).sorted()
        let log = lab.s.url("outside.log")  // the guest's console, outside the home
        let up = try lab.cli.run("vmup", ["-o", "vm_qemu_params=-usbdevice tablet -serial file:\(log)", home])
        try #require(up.status == 0, "\(up.err)")
        let marker = "quiet: no $DISPLAY or $WAYLAND_DISPLAY: using VNC instead of SDL on vnc://127.0.0.1:"
        let line = try #require(up.err.split(separator: "\n").first { $0.contains(marker) }, "\(up.err)")
        #expect(up.err.components(separatedBy: "vnc://").count == 2, "said once: \(up.err)")
        let port = try #require(Int(line.components(separatedBy: marker)[1]))
        #expect(port > (held ? 5900 : 5899) && port <= 65535, "5900 is held by the test")
        let sockets = try listening()
        #expect(sockets.contains("127.0.0.1:\(port)"), "\(sockets)")
        #expect(sockets.contains("127.0.0.1:\(fwd)") && !sockets.contains("0.0.0.0:\(fwd)") && !sockets.contains("*:\(fwd)"), "\(sockets)")
        #expect(try lab.cli.run("vmps", ["-r", "-o", "d", "-d", home]).out == "vnc://127.0.0.1:\(port)\n")
        #expect(try lab.cli.run("vminfo", ["-il", home]).out.contains("Display: vnc://127.0.0.1:\(port)"))
        #expect(waitUntil(120) { textIfPresent(log).contains("VMTOOLS-GUEST: READY") })
        let down = try lab.down(home)
        #expect(down.status == 0, "\(down.err)")
        #expect(try String(contentsOfFile: log, encoding: .utf8).contains("VMTOOLS-GUEST: POWEROFF"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: home).sorted() == before)
    }

    /// C6: three virtio disks (one made from a createsize alone) and a third
    /// CD-ROM on virtio-scsi; the guest sees them all.
    @Test(.requiresGuest) func theGuestSeesMoreThanTwoDisksAndCDROMs() throws {
        guard let lab = try BootLab.guest() else { return }
        let home = try lab.makeVM("many", """
        vm_storage_hdd_interface=virtio
        vm_storage_hdd1_enable=yes
        vm_storage_hdd1_backend=one.qcow2
        vm_storage_hdd3_createsize=24M
        vm_storage_cdrom3_enable=yes
        vm_storage_cdrom3_backend=\(Guest.iso)
        """)
        #expect(try Subprocess("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", home + "/one.qcow2", "8M"]).run().status == 0)
        let r = try lab.up(home)
        try #require(r.status == 0, "\(r.err)")
        #expect(lab.readyOrDump(home), "\(lab.serial(home))")
        let disks = lab.serial(home).split(whereSeparator: \.isNewline).filter { $0.contains("VMTOOLS-GUEST: DISK ") }
        let sizes = Dictionary(disks.compactMap { l -> (String, String)? in
            let f = l.components(separatedBy: "DISK ")[1].split(separator: " ")
            return f.count > 1 ? (String(f[0]), String(f[1])) : nil
        }, uniquingKeysWith: { a, _ in a })
        #expect(sizes["vda"] == "size=16384" && sizes["vdb"] == "size=32768" && sizes["vdc"] == "size=49152", "\(disks)")
        #expect(sizes.keys.filter { $0.hasPrefix("sr") }.count == 2, "\(disks)")  // IDE and virtio-scsi
        #expect(FileManager.default.fileExists(atPath: home + "/hdd3.qcow2"))
        // The new disk is now part of the VM: copies and forks see it.
        let f = try VMSettingsFile.read(home + "/vm.settings")
        #expect(f.value("vm_storage_hdd3_backend") == "hdd3.qcow2" && f.value("vm_storage_hdd3_enable") == "yes" && f.value("vm_storage_hdd3_createsize") == "")
        #expect(try lab.down(home).status == 0)
    }
}
