import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// Clipboard, password, UNIX socket and full screen of the display
/// (vm.settings(5) `vm_display_clipboard`, `vm_display_password`,
/// `vm_display_iface=unix`, `vm_display_fullscreen`): argv for each form,
/// and a real VNC server asked what security it offers.
@Suite(.serialized) struct DisplayAccessTests {
    let build = BuildCmdTests()

    static let vdagent = ["-chardev", "qemu-vdagent,id=vdagent,clipboard=on", "-device", "virtio-serial-pci",
                          "-device", "virtserialport,chardev=vdagent,name=com.redhat.spice.0"]
    static let spiceChannel = ["-chardev", "spicevmc,id=spicechannel0,name=vdagent", "-device", "virtio-serial-pci",
                               "-device", "virtserialport,chardev=spicechannel0,name=com.redhat.spice.0"]

    /// From the first display argument to the end of the display module's part.
    func displayPart(_ s: Scratch, _ values: [String: String], home: String? = nil, headless: Bool = false) throws -> [String] {
        let env = headless ? [:] : try build.graphical(s)
        let argv = try build.command(s, values, home: home, environment: env).argv
        let from = try #require(argv.firstIndex { ["-display", "-chardev", "-object"].contains($0) })
        let end = try #require(argv.firstIndex(of: "-monitor") ?? argv.firstIndex(of: "-name"))
        // The usb module follows the display's: SPICE's USB redirection is USBTests' to check.
        var part: [String] = []
        var i = from
        while i < end {
            if i + 1 < end, ["qemu-xhci", "usbredir", "usb-redir"].contains(where: { argv[i + 1].contains($0) }) { i += 2; continue }
            part.append(argv[i])
            i += 1
        }
        return part
    }

    @Test(arguments: [
        (["vm_display_type": "gtk", "vm_display_clipboard": "yes"], ["-display", "gtk", "-vga", "std"] + vdagent),
        (["vm_display_type": "sdl", "vm_display_clipboard": "yes"], ["-display", "sdl", "-vga", "std"] + vdagent),
        (["vm_display_type": "vnc", "vm_display_port": "5901", "vm_display_clipboard": "yes"], ["-display", "vnc=127.0.0.1:1", "-vga", "std"] + vdagent),
        (["vm_display_type": "spice", "vm_display_port": "5930", "vm_display_clipboard": "yes"],
         spiceChannel + ["-spice", "addr=127.0.0.1,port=5930,disable-ticketing=on", "-vga", "qxl"]),
        (["vm_display_type": "vnc", "vm_display_port": "5901", "vm_display_clipboard": "no"], ["-display", "vnc=127.0.0.1:1", "-vga", "std"]),
        (["vm_display_type": "gtk"], ["-display", "gtk", "-vga", "std"]),
        (["vm_display_type": "gtk", "vm_display_fullscreen": "yes"], ["-display", "gtk,full-screen=on", "-vga", "std"]),
        (["vm_display_type": "sdl", "vm_display_fullscreen": "yes"], ["-display", "sdl,full-screen=on", "-vga", "std"]),
    ])
    func clipboardAndFullScreen(_ values: [String: String], _ expected: [String]) throws {
        let s = Scratch()
        #expect(try displayPart(s, values) == expected)
    }

    /// Without a window (no $DISPLAY) SDL falls back to VNC; the clipboard stays.
    @Test func theVNCFallbackKeepsTheClipboard() throws {
        let s = Scratch()
        #expect(try displayPart(s, ["vm_display_type": "sdl", "vm_display_clipboard": "yes"], headless: true)
                == ["-display", "vnc=127.0.0.1:0,to=59635", "-vga", "std"] + Self.vdagent)
    }

    @Test func passwordsAndSockets() throws {
        let s = Scratch()
        try s.mkdir("vm")
        try s.write("pw", "secret")
        let home = s.url("vm")
        #expect(try displayPart(s, ["vm_display_type": "vnc", "vm_display_port": "5901", "vm_display_password": s.url("pw")])
                == ["-object", "secret,id=displaysecret,format=raw,file=\(s.url("pw"))", "-display", "vnc=127.0.0.1:1,password-secret=displaysecret", "-vga", "std"])
        let auto = try build.command(s, ["vm_display_type": "vnc", "vm_display_password": "auto"], home: home)
        #expect(auto.plan.displayPassword == home + "/display.password")
        #expect(auto.argv.contains("secret,id=displaysecret,format=raw,file=./display.password"))
        #expect(auto.argv.contains("vnc=127.0.0.1:0,to=59635,password-secret=displaysecret"))
        #expect(try displayPart(s, ["vm_display_type": "vnc", "vm_display_iface": "unix"], home: home)
                == ["-display", "vnc=unix:./display.sock", "-vga", "std"])
        #expect(try displayPart(s, ["vm_display_type": "spice", "vm_display_iface": "unix", "vm_display_password": "auto"], home: home)
                == ["-object", "secret,id=displaysecret,format=raw,file=./display.password"] + Self.spiceChannel
                + ["-spice", "unix=on,addr=./display.sock,password-secret=displaysecret", "-vga", "qxl"])
        let window = try build.command(s, ["vm_display_type": "gtk", "vm_display_password": "auto"], home: home, environment: try build.graphical(s))
        #expect(window.plan.displayPassword == nil && !window.argv.contains("-object"), "a local window gets no password")
        let spice = try build.command(s, ["vm_display_type": "spice", "vm_display_password": s.url("pw")], dryRun: false)
        #expect(spice.plan.preview.argv.contains("addr=127.0.0.1,port=5900,password-secret=displaysecret"), "\(spice.plan.preview.argv)")
    }

    /// QEMU reads a password file whole: a trailing newline or an empty
    /// file would lock everyone out, so vmup says so instead.
    @Test func aPasswordFileWithANewlineOrNothingIsRefused() throws {
        let s = Scratch()
        try s.write("nl", "secret\n")
        try s.write("empty", "")
        for (file, why) in [("nl", "ends with a newline, which would be part of the password"), ("empty", "is empty")] {
            let e = expectError { _ = try build.command(s, ["vm_display_type": "vnc", "vm_display_password": s.url(file)]) }
            #expect(e?.subject == "vm_display_password" && e?.message.contains("\(s.url(file)) \(why)") == true, "\(String(describing: e))")
        }
    }

    @Test(arguments: [
        (["vm_display_clipboard": "maybe"], "vm_display_clipboard"),
        (["vm_display_fullscreen": "1"], "vm_display_fullscreen"),
        (["vm_display_type": "vnc", "vm_display_password": "relative/file"], "vm_display_password"),
        (["vm_display_type": "vnc", "vm_display_password": "/no/such/password"], "vm_display_password"),
        (["vm_display_type": "vnc", "vm_display_password": "auto"], "vm_display_password"),
        (["vm_display_type": "vnc", "vm_display_iface": "unix"], "vm_display_iface"),
    ])
    func badValuesNameTheSetting(_ values: [String: String], _ subject: String) throws {
        let s = Scratch()
        // No home: auto and unix have nowhere to go.
        let e = expectError { _ = try build.command(s, values) }
        #expect(e?.subject == subject, "\(String(describing: e))")
    }

    /// vmps and vminfo show a display socket by its absolute path.
    @Test func aSocketDisplayIsShownByItsPath() {
        let vnc = QemuProcess(pid: 1, uid: 0, argv: ["qemu-system-x86_64", "-pidfile", "/vms/a/qemu.pid", "-display", "vnc=unix:./display.sock",
                                                     "-vga", "std"], vszKB: 0, cpuPercent: 0)
        #expect(vnc.display == "vnc+unix:///vms/a/display.sock")
        let spice = QemuProcess(pid: 1, uid: 0, argv: ["qemu-system-x86_64", "-pidfile", "/vms/a/qemu.pid",
                                                       "-spice", "unix=on,addr=./display.sock,disable-ticketing=on", "-vga", "qxl"], vszKB: 0, cpuPercent: 0)
        #expect(spice.display == "spice+unix:///vms/a/display.sock")
    }

    /// A QEMU older than 6.1 has no qemu-vdagent chardev: said, naming QEMU
    /// and the setting. Planning only names the question (a probe of the
    /// plan); the executor asks it, before anything is written.
    @Test func aQEMUWithoutTheClipboardAgentIsNamed() throws {
        let s = Scratch()
        let old = try s.write("qemu-old", "#!/bin/sh\necho 'Available chardev backend types:'\necho '  socket'\necho '  spicevmc'\n")
        chmod(old, 0o755)
        let new = try s.write("qemu-new", "#!/bin/sh\necho 'Available chardev backend types:'\necho '  qemu-vdagent'\n")
        chmod(new, 0o755)
        let planned = try build.command(s, ["vm_display_type": "vnc", "vm_display_port": "5901", "vm_display_clipboard": "yes"], dryRun: false)
        let qemu = try #require(planned.argv.first)
        #expect(planned.plan.probes == [.init(executable: qemu, arguments: ["-chardev", "help"], expects: "qemu-vdagent", setting: "vm_display_clipboard",
                                              missing: "\(qemu) has no qemu-vdagent chardev (QEMU 6.1 or later needed)")])
        // The executor asks the QEMU the plan names (here a stand-in).
        for (fake, refused) in [(old, true), (new, false)] {
            var c = planned
            c.plan.probes[0].executable = fake
            c.plan.probes[0].missing = "\(fake) has no qemu-vdagent chardev (QEMU 6.1 or later needed)"
            var x = try build.executor(s, c)
            guard refused else { try x.prepare(); continue }
            let e = expectError { try x.prepare() }
            #expect(e?.subject == "vm_display_clipboard" && e?.message.contains("\(old) has no qemu-vdagent chardev (QEMU 6.1 or later needed)") == true,
                    "\(String(describing: e))")
        }
    }

    // MARK: a real VNC server

    /// The start of an RFB 3.8 handshake on `fd`: the server's version, ours,
    /// the security types it offers; then type `choice` and the server's
    /// SecurityResult (0 accepted). nil where the server said nothing.
    static func rfbHandshake(_ fd: Int32, choice: UInt8) -> (version: String, types: [UInt8], result: UInt32?)? {
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        func readExactly(_ n: Int) -> [UInt8]? {
            var out: [UInt8] = []
            var buf = [UInt8](repeating: 0, count: n)
            while out.count < n {
                let got = read(fd, &buf, n - out.count)
                guard got > 0 else { return nil }
                out += buf[..<got]
            }
            return out
        }
        guard let version = readExactly(12) else { return nil }
        _ = "RFB 003.008\n".withCString { write(fd, $0, 12) }
        guard let count = readExactly(1)?.first, count > 0, let types = readExactly(Int(count)) else { return nil }
        var c = choice
        _ = write(fd, &c, 1)
        let result = readExactly(4).map { $0.reduce(UInt32(0)) { $0 << 8 | UInt32($1) } }
        return (String(decoding: version, as: UTF8.self), types, result)
    }

    static func connectTCP(port: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = in_port_t(UInt16(port).bigEndian)
        sa.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if ok != 0 { close(fd); return -1 }
        return fd
    }

    static func connectUnix(_ path: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var sa = sockaddr_un()
        sa.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &sa.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() where i < raw.count - 1 { raw[i] = b }
        }
        let ok = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        if ok != 0 { close(fd); return -1 }
        return fd
    }

    /// One VM started twice: on a UNIX socket without a password (0600,
    /// None offered and accepted), then on TCP with a generated password
    /// (None not offered, a None attempt refused; vminfo shows the password).
    @Test(.requiresGuest) func theVNCServerAsksForThePasswordAndTheSocketIsPrivate() throws {
        // The lab's configuration without its display or serial log.
        guard let lab = try BootLab.guest(config: BootLab.config(["vm_display_type": nil, "vm_serial_log": nil])) else { return }
        let s = lab.s, cli = lab.cli
        try s.write("vm/vm.settings", """
            vm_name=vm
            vm_boot_order=d
            vm_display_type=vnc
            vm_storage_cdrom1_enable=yes
            vm_storage_cdrom1_backend=\(Guest.iso)
            """)
        let home = s.url("vm")

        let up = try cli.run("vmup", ["-o", "vm_display_iface=unix", "-o", "vm_display_clipboard=yes", home])
        try #require(up.status == 0, "\(up.err)")
        let socket = home + "/display.sock"
        #expect((up.out + up.err).contains("vm: listening on vnc+unix://\(socket)"), "\(up.out)\(up.err)")
        let unixInfo = try cli.run("vminfo", ["-i", "-l", home])
        #expect(unixInfo.out.contains("Display: vnc+unix://\(socket)\n"), "\(unixInfo.out)")
        var st = stat()
        #expect(lstat(socket, &st) == 0 && st.st_mode & S_IFMT == S_IFSOCK)
        #expect(st.st_mode & 0o777 == 0o600, "\(String(st.st_mode & 0o777, radix: 8))")
        let ufd = Self.connectUnix(socket)
        try #require(ufd >= 0)
        let open = Self.rfbHandshake(ufd, choice: 1)
        close(ufd)
        #expect(open?.version.hasPrefix("RFB 003.") == true, "\(String(describing: open))")
        #expect(open?.types.contains(1) == true && open?.result == 0, "\(String(describing: open))")
        #expect(try cli.run("vmdown", [home]).status == 0)
        #expect(!FileSystem.lexists(socket))

        let locked = try cli.run("vmup", ["-o", "vm_display_password=auto", home])
        try #require(locked.status == 0, "\(locked.err)")
        let passwordFile = home + "/display.password"
        #expect(lstat(passwordFile, &st) == 0 && st.st_mode & 0o777 == 0o600)
        let password = try String(contentsOfFile: passwordFile, encoding: .utf8)
        #expect(password.count == 8)
        #expect(!(try String(contentsOfFile: home + "/vm.settings", encoding: .utf8)).contains(password))
        let info = try cli.run("vminfo", ["-i", "-l", home])
        #expect(info.out.contains("Display password: \(password)\n"), "\(info.out)")
        let display = try #require(info.out.split(separator: "\n").first { $0.hasPrefix("Display: vnc://127.0.0.1:") }, "\(info.out)")
        let port = try #require(Int(display.split(separator: ":").last ?? ""))
        let fd = Self.connectTCP(port: port)
        try #require(fd >= 0)
        let guarded = Self.rfbHandshake(fd, choice: 1)
        close(fd)
        #expect(guarded?.types.isEmpty == false && guarded?.types.contains(1) == false, "\(String(describing: guarded))")
        #expect(guarded?.types.contains(2) == true, "VNC authentication offered: \(String(describing: guarded))")
        #expect(guarded?.result != 0, "a None attempt is refused: \(String(describing: guarded))")
        #expect(try cli.run("vmdown", [home]).status == 0)
        #expect(!FileSystem.lexists(passwordFile))
    }
}
