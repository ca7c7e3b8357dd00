import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// What a start makes in a home is the user's alone whatever the umask
/// (vmup(1), "Files in the VM home"): one start with every file a start can
/// make (UEFI variables, TPM, passt with an SSH forward, cloud-init, the
/// serial log, the guest agent, a display socket and password) under umask
/// 000. Every name it made must also be one the start checks for planted
/// links (`VMFileNames.written`): a new file is caught here until it is.
@Suite(.serialized) struct PrivateFileModeTests {
    /// `vmup` under umask 000, through a shell that sets it and execs.
    static func upUnderUmask000(_ lab: BootLab, _ home: String, _ flags: [String] = []) throws -> CLI.Result? {
        try lab.cli.run("/bin/sh", ["-c", "umask 000; exec \"$@\"", "sh", lab.cli.bin + "/vmup"] + flags + ["--", home],
                        environment: lab.cli.environment, within: 120)
    }

    /// Every entry of `dir`, recursively, with its mode and type (lstat).
    static func entries(_ dir: String, prefix: String = "") -> [(name: String, mode: mode_t, type: mode_t)] {
        var out: [(String, mode_t, mode_t)] = []
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() {
            var st = stat()
            guard lstat(dir + "/" + name, &st) == 0 else { continue }
            out.append((prefix + name, st.st_mode & 0o7777, st.st_mode & S_IFMT))
            if st.st_mode & S_IFMT == S_IFDIR { out += entries(dir + "/" + name, prefix: prefix + name + "/") }
        }
        return out
    }

    @Test(.requiresGuest, .requiresOVMF, .requires("swtpm", "passt")) func everyFileAStartMakesIsPrivateAndChecked() throws {
        guard requireTool("swtpm") != nil, requireTool("passt") != nil, FirmwareBootTests().ovmf(), let lab = try BootLab.guest() else { return }
        let home = try lab.makeVM("private", """
        vm_firmware=uefi
        vm_ram_size=256M
        vm_boot_kernel=\(Guest.directory)/vmlinuz
        vm_boot_initrd=\(Guest.directory)/initrd.gz
        vm_boot_append='console=ttyS0 panic=-1 loglevel=3'
        vm_tpm=2.0
        vm_networking_iface1_device=virtio-net-pci
        vm_networking_iface1_mode=passt
        vm_networking_iface1_forward=tcp:0:22
        vm_cloudinit_enable=yes
        vm_cloudinit_sshkey='\(CloudInitTests.key)'
        vm_guestagent_enable=yes
        vm_display_type=vnc
        vm_display_iface=unix
        vm_display_password=auto
        """)
        defer {
            for line in ProcessTable.cwdMatches(home) {
                if let pid = Int32(line.prefix { $0 != " " }) { kill(pid, SIGKILL) }
            }
        }
        let before = Set(try FileManager.default.contentsOfDirectory(atPath: home))
        let up = try #require(try Self.upUnderUmask000(lab, home))
        try #require(up.status == 0, "\(up.err)")
        #expect(lab.pid(home) != nil)
        let names = try resolver(lab.s).loadGlobal().fileNames
        let made = Self.entries(home).filter { !before.contains($0.name) }
        let top = made.filter { !$0.name.contains("/") }.map(\.name)
        // What this start can make, so the check below is not vacuous.
        for name in ["firmware-vars.qcow2", "serial.log", "qemu.pid", "qmp.sock", "monitor.sock", "qga.sock", "display.sock", "display.password",
                     "tpm", "tpm.sock", "tpm.pid", "tpm.log", "cidata.iso", "ssh.config", "known_hosts",
                     "passt-nd1.sock", "passt-nd1.log", "passt-nd1.forwards"] {
            #expect(top.contains(name), "\(name) was not made: \(top)")
        }
        for e in made {
            let expected: mode_t = e.type == S_IFDIR ? 0o700 : 0o600
            #expect(e.mode == expected, "\(e.name) is mode \(String(e.mode, radix: 8)), not \(String(expected, radix: 8))")
        }
        for name in top where name != names.lock {
            #expect(names.written.contains(name) || VMFileNames.isNumberedWork(name),
                    "\(name) is made by a start but not in VMFileNames.written, so a planted link there is not refused")
        }
        let down = try lab.cli.run("vmdown", ["-k", "--", home])
        #expect(down.status == 0, "\(down.err)")
        #expect(waitUntil(10) { ProcessTable.cwdMatches(home).isEmpty }, "a helper outlived QEMU")
    }

    /// The UEFI variable store `vmcreate -n` makes (no boot): 0600 under
    /// umask 000, where qemu-img alone makes it 0666 less the umask.
    @Test(.requiresOVMF, .requires("qemu-img")) func theUEFIVariableStoreIs0600() throws {
        guard FirmwareBootTests().ovmf() else { return }
        let s = Scratch()
        let cli = try CLI(s)
        let r = try #require(try cli.run("/bin/sh", ["-c", "umask 000; exec \"$@\"", "sh", cli.bin + "/vmcreate", "-n", "-o", "vm_firmware=uefi", "--", s.url("vm")],
                                         environment: cli.environment, within: 60))
        #expect(r.status == 0, "\(r.err)")
        #expect(FileSystem.mode(s.url("vm/firmware-vars.qcow2")) == 0o600, "\(r.err)")
        #expect(try FileSystem.listDirectory(s.url("vm")).filter { $0.contains(".tmp.") } == [])
        // A store an earlier version made 0644: vmfix -s reports it, and makes it private.
        chmod(s.url("vm/firmware-vars.qcow2"), 0o644)
        let check = try cli.run("vmfix", ["-n", "-s", "--", s.url("vm")])
        #expect(check.status == 3 && check.err.contains("firmware-vars.qcow2 is readable by others"), "\(check.err)")
        #expect(FileSystem.mode(s.url("vm/firmware-vars.qcow2")) == 0o644)
        let fix = try cli.run("vmfix", ["-s", "--", s.url("vm")])
        #expect(fix.err.contains("only its owner may read it now"), "\(fix.err)")
        #expect(FileSystem.mode(s.url("vm/firmware-vars.qcow2")) == 0o600)
    }
}
