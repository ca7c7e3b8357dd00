import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// The exported test guest runs on libvirt's own engine (vminfo(1), `-L`):
/// libvirtd's QEMU driver defines it, starts it (domain type `qemu`, TCG,
/// where KVM does not work), the guest says READY on its serial log, and it
/// is destroyed and undefined. The daemons are started here when none runs,
/// and only those are stopped, by the pids in their pid files.
@Suite(.serialized) struct LibvirtBootTests {
    /// A libvirt daemon this test started (`-d` writes /run/NAME.pid), or
    /// nil when one already ran.
    struct Daemon {
        let name: String
        let pid: Int32
        /// When it started, in clock ticks since boot (`/proc/PID/stat`).
        var started: UInt64? { Self.startTime(pid) }

        static func startTime(_ pid: Int32) -> UInt64? {
            guard let fields = ProcessTable.statFields(pid), fields.count > 19 else { return nil }
            return UInt64(fields[19])
        }

        /// The QEMUs libvirtd started since `since` (its capability probe runs
        /// daemonised and outlives a libvirtd stopped mid-probe).
        static func libvirtQemus(since: UInt64) -> [Int32] {
            guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
            return entries.compactMap { Int32($0) }.filter { pid in
                guard ProcessTable.isLive(pid), let t = startTime(pid), t >= since,
                      let cmdline = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")) else { return false }
                let args = String(decoding: cmdline, as: UTF8.self).split(separator: "\0")
                return args.first?.contains("qemu-system") == true && args.contains { $0.contains("/var/lib/libvirt/qemu/") }
            }
        }

        static func pid(_ name: String) -> Int32? {
            (try? String(contentsOfFile: "/run/\(name).pid", encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }

        static func running(_ name: String) -> Bool {
            guard let pid = pid(name), ProcessTable.isLive(pid) else { return false }
            return (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.hasPrefix(name) == true
        }

        static func start(_ name: String, ready: String) throws -> Daemon? {
            if running(name) { return nil }
            let exe = try #require(Tools.path(name), "\(name) is not installed (libvirt-daemon-system), and CI must run this test")
            let r = try Subprocess(exe, ["-d"]).run()
            try #require(r.status == 0, "\(name) -d: \(r.stderrText)")
            try #require(waitUntil(30) { running(name) && FileManager.default.fileExists(atPath: ready) }, "\(name) did not start")
            return Daemon(name: name, pid: try #require(pid(name)))
        }

        func stop() {
            let since = started
            kill(pid, SIGTERM)
            if !waitUntil(30, { !ProcessTable.isLive(pid) }) { kill(pid, SIGKILL) }
            guard let since else { return }
            for qemu in Self.libvirtQemus(since: since) { kill(qemu, SIGKILL) }
        }
    }

    @Test(.requiresGuest, .requiresRoot, .requires("virsh", "libvirtd", "virtlogd"))
    func theExportedTestGuestBootsUnderLibvirtd() throws {
        // libvirt stops the guest itself: no shutdown timeout of vmdown's.
        guard let lab = try BootLab.guest(needing: "virsh", config: BootLab.config(["vm_qemu_shutdown_timeout": nil])) else { return }
        let s = lab.s, cli = lab.cli
        // libvirt's QEMU runs as libvirt-qemu (qemu.conf `user`); with
        // dynamic_ownership it owns the images for the run, but must be able
        // to walk to them: mkdtemp makes the scratch directory 0700.
        #expect(chmod(s.path, 0o711) == 0)
        try FileManager.default.createDirectory(atPath: s.url("base"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Guest.qcow2, toPath: s.url("base/guest.qcow2"))
        try s.write("base/vm.settings", """
            vm_name=base
            vm_boot_order=c
            vm_storage_hdd_interface=virtio
            vm_storage_hdd1_enable=yes
            vm_storage_hdd1_backend=guest.qcow2
            vm_networking_iface1_enable=yes
            vm_networking_iface1_device=virtio-net-pci

            """)
        // A fork: its disk is an overlay whose backing chain libvirt reads from the image.
        let fork = try cli.run("vmfork", [s.url("base"), s.url("base/lv")])
        try #require(fork.status == 0, "\(fork.err)")
        let home = s.url("base/lv")
        let export = try cli.run("vminfo", ["-L", "--", home])
        try #require(export.status == 0, "\(export.err)")
        let xml = try s.write("lv.xml", export.out)
        let expectedType = try Accelerator.choose(SettingsTable()).kind == .kvm ? "kvm" : "qemu"
        #expect(export.out.hasPrefix("<domain type='\(expectedType)'>"), "\(export.out)")

        let log = try Self.boot(xml, name: "lv", serial: home + "/serial.log", uefi: false)
        #expect(log.contains("VMTOOLS-GUEST: FIRMWARE bios"), "\(log)")
        #expect(log.contains("VMTOOLS-GUEST: DISK vda "), "the fork's overlay on virtio: \(log)")
        // No QEMU of this test outlives it.
        #expect(waitUntil(10) { lab.leftovers().isEmpty })
    }

    /// `vm_firmware=uefi` and `vm_tpm=2.0` as libvirt has them: the guest,
    /// booted directly from its kernel, sees UEFI and a TPM 2.0.
    @Test(.requiresGuest, .requiresRoot, .requires("virsh", "swtpm", "libvirtd", "virtlogd"),
          .enabled(if: FileManager.default.fileExists(atPath: "/usr/share/OVMF/OVMF_CODE_4M.fd") || Tools.ci, "needs ovmf"))
    func theExportedUEFIGuestWithATPMBootsUnderLibvirtd() throws {
        guard let lab = try BootLab.guest(needing: "virsh", "swtpm", config: nil) else { return }
        let s = lab.s, cli = lab.cli
        #expect(chmod(s.path, 0o711) == 0)
        try s.write("uefi/vm.settings", """
            vm_name=lvuefi
            vm_firmware=uefi
            vm_tpm=2.0
            vm_boot_kernel=\(Guest.directory)/vmlinuz
            vm_boot_initrd=\(Guest.directory)/initrd.gz
            vm_boot_append='console=ttyS0,115200 loglevel=3 panic=-1'
            vm_ram_size=256M
            vm_cpu_count=1
            vm_serial_log=yes
            vm_display_type=none

            """)
        let home = s.url("uefi")
        let export = try cli.run("vminfo", ["-L", "--", home])
        try #require(export.status == 0, "\(export.err)")
        #expect(export.out.contains("<os firmware='efi'>") && export.out.contains("<tpm model='tpm-crb'>"), "\(export.out)")
        let xml = try s.write("uefi.xml", export.out)
        let log = try Self.boot(xml, name: "lvuefi", serial: home + "/serial.log", uefi: true)
        #expect(log.contains("VMTOOLS-GUEST: FIRMWARE uefi"), "\(log)")
        #expect(log.contains("VMTOOLS-GUEST: TPM 2 /dev/tpmrm0"), "\(log)")
        #expect(waitUntil(10) { lab.leftovers().isEmpty })
    }

    /// Starts the daemons if none runs, defines, starts, waits for READY on
    /// the serial log, destroys and undefines (NVRAM and TPM state too);
    /// returns the log. Every step is undone even when one fails.
    static func boot(_ xml: String, name: String, serial: String, uefi: Bool) throws -> String {
        let virsh = try #require(Tools.path("virsh"))
        let virtlogd = try Daemon.start("virtlogd", ready: "/run/libvirt/virtlogd-sock")
        defer { virtlogd?.stop() }
        let libvirtd = try Daemon.start("libvirtd", ready: "/run/libvirt/libvirt-sock")
        defer { libvirtd?.stop() }
        func run(_ args: String...) throws -> Subprocess.Result {
            try Subprocess(virsh, ["-q", "-c", "qemu:///system"] + args).run()
        }
        let undefine = uefi ? ["undefine", "--nvram", "--tpm", name] : ["undefine", "--tpm", name]
        let define = try run("define", "--validate", xml)
        try #require(define.status == 0, "\(define.stderrText)")
        defer { _ = try? Subprocess(virsh, ["-q", "-c", "qemu:///system"] + undefine).run() }
        let started = Date()
        let start = try run("start", name)
        defer { _ = try? run("destroy", name) }
        try #require(start.status == 0, "\(start.stderrText)")
        let ready = waitUntil(180) { ((try? String(contentsOfFile: serial, encoding: .utf8)) ?? "").contains("VMTOOLS-GUEST: READY") }
        let log = (try? String(contentsOfFile: serial, encoding: .utf8)) ?? ""
        #expect(ready, "no READY on \(serial):\n\(log)\n\((try? String(contentsOfFile: "/var/log/libvirt/qemu/\(name).log", encoding: .utf8)) ?? "")")
        print("libvirt: \(name): READY \(Int(Date().timeIntervalSince(started))) s after virsh start")
        #expect(try run("destroy", name).status == 0)
        let gone = try Subprocess(virsh, ["-q", "-c", "qemu:///system"] + undefine).run()
        #expect(gone.status == 0, "\(gone.stderrText)")
        #expect(try run("domstate", name).status != 0, "undefined")
        return log
    }
}
