import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// The scratch installation every test that starts a VM works in: a CLI
/// whose system layer is in the scratch tree, its vmtools.conf, VM homes
/// with the test guest, start and stop. When the lab ends, a QEMU it left
/// running fails the test that owns it (named by pid and command line) and
/// is killed by pid: only QEMUs naming the lab's scratch directory, or whose
/// pid the lab read from a home's pid file, never another test's.
final class BootLab {
    let s = Scratch()
    let cli: CLI
    /// The private key the cloud guest lets in (`cloud()`); empty otherwise.
    private(set) var key = ""
    /// Where the cloud tests make their VM homes.
    var vms: String { s.url("vms") }
    /// QEMUs seen started, by pid, with the command line they had then: a
    /// pid that now runs another command line is not the lab's to kill.
    private var started: [Int32: [String]] = [:]
    private var atEnd: [(BootLab) -> Void] = []
    /// Where the test made the lab: its end check's issues point there.
    private let origin: SourceLocation

    /// The lab's vmtools.conf: headless, small and quick to stop, the guest's
    /// serial log on (the tests read what the guest says there). Each change
    /// replaces a setting's value in place, drops it (nil), or is appended.
    static func config(_ changes: KeyValuePairs<String, String?> = [:]) -> String {
        var lines: [(String, String?)] = [("vm_display_type", "none"), ("vm_ram_size", "128M"), ("vm_cpu_count", "1"),
                                          ("vm_qemu_shutdown_timeout", "30"), ("vm_serial_log", "yes")]
        for (name, value) in changes {
            if let i = lines.firstIndex(where: { $0.0 == name }) { lines[i].1 = value } else { lines.append((name, value)) }
        }
        return lines.compactMap { name, value in value.map { "\(name)=\($0)\n" } }.joined()
    }

    /// A lab without a guest; `config` nil writes no vmtools.conf.
    init(config: String? = BootLab.config(), sourceLocation: SourceLocation = #_sourceLocation) throws {
        origin = sourceLocation
        cli = try CLI(s)
        if let config { try s.write("etc/vmtools.conf", config) }
    }

    /// A lab for the busybox guest (Tests/Guest), which tests boot with
    /// qemu-img disks beside it; nil, with an issue recorded, when the
    /// guest cannot be built or a tool is missing.
    static func guest(needing tools: String..., config: String? = BootLab.config(),
                      sourceLocation: SourceLocation = #_sourceLocation) throws -> BootLab? {
        guard Guest.build() != nil, requireTool("qemu-img", sourceLocation: sourceLocation) != nil,
              tools.allSatisfy({ requireTool($0, sourceLocation: sourceLocation) != nil }) else { return nil }
        return try BootLab(config: config, sourceLocation: sourceLocation)
    }

    /// A lab for the Debian 12 cloud guest: a `vms` folder, and the user's
    /// SSH key found by key discovery (~/.ssh/id_ed25519.pub).
    static func cloud(sourceLocation: SourceLocation = #_sourceLocation) throws -> BootLab? {
        guard CloudGuest.build() != nil else { return nil }
        let lab = try BootLab(config: config(["vm_ram_size": nil, "vm_cpu_count": nil, "vm_qemu_shutdown_timeout": "60",
                                              "vm_serial_log": "yes", "cfg_limit_waitguest": "480"]),
                              sourceLocation: sourceLocation)
        try lab.s.mkdir("vms")
        try lab.s.mkdir("home/.ssh")
        lab.key = try TestSSHKey(in: lab.s.url("home/.ssh")).privateKey
        return lab
    }

    /// Runs when the lab ends, after its QEMUs are gone (in the order given);
    /// it is handed the lab, so it need not hold it.
    func onEnd(_ body: @escaping (BootLab) -> Void) { atEnd.append(body) }

    /// A VM home with the guest ISO as CD-ROM 1 and a blank data disk as HDD 2 (IDE 0:0:1:0).
    func makeVM(_ name: String, _ extra: String = "") throws -> String {
        try s.write("\(name)/vm.settings", """
        vm_name=\(ExtendedString.encode(name))
        vm_boot_order=d
        vm_storage_cdrom1_enable=yes
        vm_storage_cdrom1_backend=\(Guest.iso)
        vm_storage_hdd2_enable=yes
        vm_storage_hdd2_backend=data.qcow2
        vm_networking_iface1_enable=yes
        \(extra)
        """)
        let r = try Subprocess("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", s.url("\(name)/data.qcow2"), "16M"]).run()
        #expect(r.status == 0)
        return s.url(name)
    }

    /// A VM home booting the guest ISO with a virtio network card and
    /// `settings`; raw QEMU syntax among them (the guest's command) is
    /// accepted as the user would (vm.settings(5), HOST PATHS).
    func networkedVM(_ name: String, _ settings: String) throws -> String {
        try s.write("\(name)/vm.settings", """
            vm_name=\(name)
            vm_boot_order=d
            vm_storage_cdrom1_enable=yes
            vm_storage_cdrom1_backend=\(Guest.iso)
            vm_networking_iface1_enable=yes
            vm_networking_iface1_device=virtio-net-pci
            \(settings)
            """)
        try #require(try cli.run("vmfix", ["-H", s.url(name)]).status == 3)
        return s.url(name)
    }

    func serial(_ home: String) -> String { textIfPresent(home + "/serial.log") }

    /// The pid in the home's pid file; a QEMU found there is the lab's.
    func pid(_ home: String) -> Int32? {
        let pid = (try? String(contentsOfFile: home + "/qemu.pid", encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        if let pid, let p = QemuProcess.read(pid: pid) { started[pid] = p.argv }
        return pid
    }

    /// Starts the VM with a guest command; returns vmup's result.
    @discardableResult
    func up(_ home: String, _ flags: [String] = [], command: String? = nil) throws -> CLI.Result {
        var args = flags
        if let command { args += ["-o", "vm_qemu_params=-usbdevice tablet -fw_cfg 'name=opt/vmtools/cmd,string=\(command)'"] }
        try? FileManager.default.removeItem(atPath: home + "/serial.log")
        let r = try cli.run("vmup", args + ["--", home])
        _ = pid(home)
        return r
    }

    func readyOrDump(_ home: String, _ marker: String = "VMTOOLS-GUEST: READY") -> Bool {
        waitUntil(120) { serial(home).contains(marker) }
    }

    func down(_ home: String) throws -> CLI.Result {
        try cli.run("vmdown", ["--", home])
    }

    /// QEMUs of this lab still running: their command line names the
    /// scratch directory, or the lab read their pid from a home.
    func leftovers() -> [QemuProcess] {
        QemuProcess.all().filter { p in
            started[p.pid] == p.argv || p.argv.contains { $0 == s.path || $0.contains(s.path + "/") }
        }
    }

    /// The lab's end check: every leftover QEMU fails the running test,
    /// naming its pid and command line, and is killed by pid and waited for.
    @discardableResult
    func sweep() -> [QemuProcess] {
        let left = leftovers()
        for p in left {
            Issue.record("a QEMU outlived its test: pid \(p.pid): \(p.argv.joined(separator: " "))", sourceLocation: origin)
            kill(p.pid, SIGKILL)
            _ = waitUntil(10) { QemuProcess.read(pid: p.pid) == nil }
        }
        return left
    }

    deinit {
        sweep()
        for body in atEnd { body(self) }
    }
}

extension BootLab {
    /// `ssh -F HOME/ssh.config NAME command`, again while ssh itself
    /// fails (255): cloud-init restarts sshd once on a first boot.
    /// `command` is one shell command line, as ssh hands it to the guest's shell.
    func ssh(_ home: String, _ name: String, _ command: String, seconds: Double = 120) throws -> Subprocess.Result {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let attempt = Date()
            let r = try Subprocess("/usr/bin/timeout", ["60", "/usr/bin/ssh", "-F", home + "/ssh.config",
                                                        "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", name, "--", command]).run()
            if r.status != 255 || Date() >= deadline { return r }
            // Pacing between attempts; the loop's condition is ssh's status.
            let rest = 1 - Date().timeIntervalSince(attempt)
            if rest > 0 { usleep(UInt32(rest * 1_000_000)) }
        }
    }

    func json(_ r: CLI.Result) throws -> [[String: Any]] {
        try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]], "\(r.out)\(r.err)")
    }
}
