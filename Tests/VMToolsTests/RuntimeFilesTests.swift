import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// Issue 10: bare boots and read-only homes keep their pid file and sockets
/// in a private run-time directory, so every command reaches them; every
/// socket, pid file and log is the user's alone whatever the umask; a failed
/// start or a kill leaves nothing behind.
@Suite(.serialized) struct RuntimeFilesTests {
    /// `vmdown -a` stops every VM of its user: these tests run vmtools as a
    /// user of their own, so they never stop another test's VMs.
    static let uid: UInt32 = 64_123

    /// Root is needed to run as another user and to mount read-only; the
    /// `.requiresRoot` trait skips these tests elsewhere than in CI.
    static func requireRoot() -> Bool {
        if geteuid() == 0 && requireTool("setpriv") != nil { return true }
        Issue.record("this test needs root (another user for vmdown -a, a read-only bind mount)")
        return false
    }

    /// Runs `argv` with the lab's environment plus a run-time directory in
    /// the scratch tree; output to files, so a full pipe never blocks.
    static func run(_ lab: BootLab, _ argv: [String], stdin: Any? = nil, wait: Bool = true, env: [String: String] = [:]) throws
        -> (Process, () throws -> CLI.Result) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        p.environment = lab.cli.environment.merging(["XDG_RUNTIME_DIR": lab.s.url("run")].merging(env) { $1 }) { $1 }
        p.currentDirectoryURL = URL(fileURLWithPath: lab.s.path)
        let id = UUID().uuidString
        let outPath = NSTemporaryDirectory() + "vmtools-out-\(id)", errPath = NSTemporaryDirectory() + "vmtools-err-\(id)"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        p.standardOutput = out
        p.standardError = err
        p.standardInput = stdin ?? FileHandle.nullDevice
        try p.run()
        let result = {
            p.waitUntilExit()
            try out.close()
            try err.close()
            defer {
                try? FileManager.default.removeItem(atPath: outPath)
                try? FileManager.default.removeItem(atPath: errPath)
            }
            return CLI.Result(status: p.terminationStatus, out: try String(contentsOfFile: outPath, encoding: .utf8),
                              err: try String(contentsOfFile: errPath, encoding: .utf8))
        }
        if wait { p.waitUntilExit() }
        return (p, result)
    }

    static func cli(_ lab: BootLab, _ name: String, _ args: [String], as user: UInt32? = nil, umask mask: String? = nil,
                    env: [String: String] = [:]) throws -> CLI.Result {
        var argv = [lab.cli.bin + "/" + name] + args
        if let mask { argv = ["/bin/sh", "-c", "umask \(mask); exec \"$@\"", "sh"] + argv }
        if let user { argv = ["/usr/bin/setpriv", "--reuid=\(user)", "--regid=\(user)", "--clear-groups", "--"] + argv }
        return try run(lab, argv, env: env).1()
    }

    static func mode(_ path: String) -> mode_t? {
        var st = stat()
        return lstat(path, &st) == 0 ? st.st_mode : nil
    }

    static func isSocket(_ path: String) -> Bool { mode(path).map { $0 & S_IFMT == S_IFSOCK } ?? false }

    static func entries(_ dir: String) -> [String] { (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] }

    static func text(_ path: String) -> String { textIfPresent(path) }

    static func monitor(_ r: CLI.Result, name: String) throws -> (pid: Int, home: String?, monitor: String) {
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]], "\(r.out) \(r.err)")
        let row = try #require(doc.first { $0["name"] as? String == name }, "\(r.out)")
        return (try #require(row["pid"] as? Int), row["home"] as? String, try #require(row["monitor"] as? String))
    }

    /// A1: a bare ISO boot gets a pid file, a monitor and a QMP socket in a
    /// run-time directory: vmps shows the monitor, vmmon talks to it,
    /// `vmdown -a -s -w` powers it off through QMP, and the directory goes.
    @Test(.requiresGuest, .requiresRoot) func aBareBootIsControlledAsAnyVMAndVmdownAllStopsIt() throws {
        guard Self.requireRoot(), let lab = try BootLab.guest() else { return }
        let run = lab.s.url("run")
        try lab.s.mkdir("run")
        let chown = try Subprocess("/bin/chown", ["-R", "\(Self.uid):\(Self.uid)", lab.s.path]).run()
        try #require(chown.status == 0, "\(chown.stderrText)")
        let log = lab.s.url("bare.log")
        let up = try Self.cli(lab, "vmup", ["-o", "vm_qemu_params=-serial file:\(log)", Guest.iso], as: Self.uid)
        try #require(up.status == 0, "\(up.err)")
        #expect(waitUntil(120) { Self.text(log).contains("VMTOOLS-GUEST: READY") }, "\(Self.text(log))")

        let vm = try Self.monitor(try Self.cli(lab, "vmps", ["-j"], as: Self.uid), name: "guest.iso")
        #expect(vm.home == nil)
        let dir = vm.monitor.deletingLastPathComponent
        #expect(dir.deletingLastPathComponent == run + "/vmtools" && dir.lastPathComponent.hasPrefix("bare-"), "\(vm.monitor)")
        #expect(vm.monitor.lastPathComponent == "monitor.sock")
        #expect(Self.text(dir + "/qemu.pid").trimmingCharacters(in: .whitespacesAndNewlines) == String(vm.pid))
        #expect(Self.isSocket(vm.monitor) && Self.isSocket(dir + "/qmp.sock"))
        #expect(Self.mode(run + "/vmtools").map { $0 & 0o777 } == 0o700 && Self.mode(dir).map { $0 & 0o777 } == 0o700)
        for f in ["qemu.pid", "monitor.sock", "qmp.sock"] {
            #expect(Self.mode(dir + "/" + f).map { $0 & 0o777 } == 0o600, "\(f)")
        }
        let q = try Self.cli(lab, "vmps", ["-r", "-o", "q", "-p", String(vm.pid)], as: Self.uid)
        #expect(q.out == vm.monitor + "\n")

        let byPath = try Self.cli(lab, "vmmon", ["-c", "info name", vm.monitor], as: Self.uid)
        #expect(byPath.status == 0 && byPath.out.contains("guest.iso"), "\(byPath.err)")
        let byDir = try Self.cli(lab, "vmmon", ["-c", "info status", dir], as: Self.uid)
        #expect(byDir.status == 0 && byDir.out.contains("VM status: running"), "\(byDir.err)")

        let down = try Self.cli(lab, "vmdown", ["-a", "-s", "-w"], as: Self.uid)
        #expect(down.status == 0, "\(down.err)")
        #expect(!down.err.contains("no virtual machine") && !down.err.contains("has no monitor"), "\(down.err)")
        #expect(Self.text(log).contains("VMTOOLS-GUEST: POWEROFF"), "the guest did not get the ACPI request")
        #expect(waitUntil(10) { QemuProcess.read(pid: Int32(vm.pid)) == nil })
        #expect(!FileManager.default.fileExists(atPath: dir), "the run-time directory is removed")
        #expect(Self.entries(run + "/vmtools").isEmpty)
        #expect(try Self.cli(lab, "vmps", [], as: Self.uid).status == 3)
    }

    /// A8: a VM home on a read-only bind mount starts with -s (not
    /// read-write), is seen by vmps, vminfo, vmmon and vmfix -n, and stops.
    @Test(.requiresGuest, .requiresRoot) func aReadOnlyHomeStartsInSnapshotModeAndEveryCommandFindsIt() throws {
        guard Self.requireRoot(), let lab = try BootLab.guest() else { return }
        let source = try lab.makeVM("ro source")
        let home = lab.s.url("ro home")
        try lab.s.mkdir("ro home")
        let mount = try Subprocess("/bin/mount", ["--bind", "-o", "ro", source, home]).run()
        guard mount.status == 0 else {
            Issue.record("cannot make a read-only bind mount: \(mount.stderrText)")
            return
        }
        defer { _ = try? Subprocess("/bin/umount", [home]).run() }
        try #require(access(home, W_OK) != 0, "the bind mount is writable")

        let info = try Self.cli(lab, "vminfo", [home])
        #expect(info.status == 0, "\(info.err)")
        let fix = try Self.cli(lab, "vmfix", ["-n", "-ps", home])
        #expect(fix.status == 0, "\(fix.err)")
        let rw = try Self.cli(lab, "vmup", [home])
        #expect(rw.status == 1 && rw.err.contains("not writable") && rw.err.contains("-s"), "\(rw.err)")

        let up = try Self.cli(lab, "vmup", ["-s", home])
        try #require(up.status == 0, "\(up.err)")
        let vm = try Self.monitor(try Self.cli(lab, "vmps", ["-j", "-d", home]), name: "ro source")
        #expect(vm.home == home)
        let dir = vm.monitor.deletingLastPathComponent
        #expect(dir.deletingLastPathComponent == lab.s.url("run/vmtools") && dir.lastPathComponent.hasPrefix("home-"), "\(vm.monitor)")
        #expect(waitUntil(120) { Self.text(dir + "/serial.log").contains("VMTOOLS-GUEST: READY") }, "\(Self.text(dir + "/serial.log"))")
        #expect(try Self.cli(lab, "vminfo", ["-i", home]).out.contains("State: RUNNING (PID \(vm.pid))"))
        let mon = try Self.cli(lab, "vmmon", ["-c", "info status", home])
        #expect(mon.status == 0 && mon.out.contains("VM status: running"), "\(mon.err)")
        let again = try Self.cli(lab, "vmup", ["-s", home])
        #expect(again.status == 1 && again.err.contains("already running (pid \(vm.pid))"), "\(again.err)")

        // Found from a session with another run-time directory too.
        let elsewhere = ["XDG_RUNTIME_DIR": lab.s.url("other")]
        #expect(try Self.cli(lab, "vminfo", ["-i", home], env: elsewhere).out.contains("State: RUNNING (PID \(vm.pid))"))
        let down = try Self.cli(lab, "vmdown", [home], env: elsewhere)
        #expect(down.status == 0, "\(down.err)")
        #expect(!FileManager.default.fileExists(atPath: dir), "the run-time directory is removed")
        #expect(Self.entries(lab.s.url("other/vmtools")).isEmpty)
        #expect(try Self.cli(lab, "vmps", ["-d", home]).status == 3)
        #expect(try Self.cli(lab, "vmfix", ["-n", "-ps", home]).status == 0)
        #expect(Self.entries(lab.s.url("run/vmtools")).isEmpty)
    }

    /// B2, C4: with umask 000, a daemonised VM's sockets, pid file and log
    /// are 0600; `vmdown -k` leaves no pid file or socket; a start that
    /// fails after QEMU made its sockets leaves none.
    @Test(.requiresGuest) func runtimeFilesArePrivateAndNothingIsLeftBehind() throws {
        guard let lab = try BootLab.guest() else { return }
        let home = try lab.makeVM("private")
        let up = try Self.cli(lab, "vmup", [home], umask: "000")
        try #require(up.status == 0, "\(up.err)")
        for f in ["qemu.pid", "monitor.sock", "qmp.sock", "serial.log"] {
            let m = Self.mode(home + "/" + f)
            #expect(m.map { $0 & 0o777 } == 0o600, "\(f): \(m.map { String($0, radix: 8) } ?? "missing")")
        }
        let kill = try Self.cli(lab, "vmdown", ["-k", home])
        #expect(kill.status == 0, "\(kill.err)")
        for f in ["qemu.pid", "monitor.sock", "qmp.sock"] { #expect(!lab.s.exists("private/" + f), "\(f) left behind") }

        // -device is created after the monitors' sockets.
        let bad = ["-o", "vm_qemu_params=-device vmtools-no-such-device"]
        let failed = try Self.cli(lab, "vmup", bad + [home])
        #expect(failed.status == 1 && failed.err.contains("QEMU failed to start"), "\(failed.err)")
        for f in ["qemu.pid", "monitor.sock", "qmp.sock"] { #expect(!lab.s.exists("private/" + f), "\(f) left behind") }
        let bare = try Self.cli(lab, "vmup", bad + [Guest.iso])
        #expect(bare.status == 1 && bare.err.contains("QEMU failed to start"), "\(bare.err)")
        #expect(Self.entries(lab.s.url("run/vmtools")).isEmpty)
    }

    /// B2: a foreground (`-i`) VM started with umask 000: its QMP socket,
    /// pid file and log are for the user alone; nothing stays after it.
    @Test(.requiresGuest) func aForegroundVMsSocketsArePrivate() throws {
        guard let lab = try BootLab.guest() else { return }
        let home = try lab.makeVM("foreground")
        let stdin = Pipe()
        let (p, result) = try Self.run(lab, ["/bin/sh", "-c", "umask 000; exec \"$@\"", "sh", lab.cli.bin + "/vmup", "-i", home],
                                       stdin: stdin, wait: false)
        defer { try? stdin.fileHandleForWriting.close() }
        // QEMU makes its chardevs one after the other: the serial log may come after the QMP socket.
        let up = waitUntil(60) { Self.isSocket(home + "/qmp.sock") && !Self.text(home + "/qemu.pid").isEmpty && Self.mode(home + "/serial.log") != nil }
        #expect(up, "the foreground VM did not start")
        for f in ["qemu.pid", "qmp.sock", "serial.log"] {
            let m = Self.mode(home + "/" + f)
            #expect(m.map { $0 & 0o777 } == 0o600, "\(f): \(m.map { String($0, radix: 8) } ?? "missing")")
        }
        let kill = try Self.cli(lab, "vmdown", ["-k", home])
        #expect(kill.status == 0, "\(kill.err)")
        #expect(waitUntil(10) { !p.isRunning })
        _ = try result()
        for f in ["qemu.pid", "qmp.sock"] { #expect(!lab.s.exists("foreground/" + f), "\(f) left behind") }
    }

    /// A VM home whose name and place look like a run-time directory's is
    /// still a home: it is never cleaned up as one.
    @Test func aVMHomeNamedLikeARunDirectoryIsAHome() throws {
        let s = Scratch()
        let g = try resolver(s).loadGlobal()
        for name in ["bare-abc123", "home-0123456789abcdef"] {
            try s.write("vmtools/\(name)/vm.settings", "vm_name=x\n")
            let dir = s.url("vmtools/\(name)")
            #expect(!RuntimeDirectory.isRunDirectory(dir))
            let p = QemuProcess(pid: 1, uid: 0, argv: ["qemu-system-x86_64", "-pidfile", dir + "/qemu.pid"], vszKB: 0, cpuPercent: 0)
            #expect(p.home(pidFile: "qemu.pid") == dir)
            RuntimeDirectory.removeIfUnused(dir, global: g)
            RuntimeDirectory.removeFiles(dir, global: g)
            #expect(s.exists("vmtools/\(name)/vm.settings"))
        }
        #expect(RuntimeDirectory.hash("/vms/a") != RuntimeDirectory.hash("/vms/b") && RuntimeDirectory.hash("/vms/a").count == 16)
    }

    /// A run-time directory another user could tamper with is refused, by name.
    @Test func anUnsafeRuntimeDirectoryIsRefused() throws {
        // Should the refusal fail, the VM the lab finds fails the test.
        let lab = try BootLab(config: "vm_display_type=none\n")
        let s = lab.s, cli = lab.cli
        try s.writeBytes("disk.img", [UInt8](repeating: 0, count: 512))
        try s.mkdir("run/vmtools")
        chmod(s.url("run/vmtools"), 0o777)
        let r = try cli.run("vmup", [s.url("disk.img")], env: ["XDG_RUNTIME_DIR": s.url("run")])
        #expect(r.status == 1 && r.err.contains(s.url("run/vmtools")) && r.err.contains("world-writable"), "\(r.err)")
        #expect(Self.entries(s.url("run/vmtools")).isEmpty)
    }
}
