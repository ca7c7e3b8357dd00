import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// `vm_tpm=2.0` on the real test guest (vm.settings(5), TPM): the guest
/// sees a TPM 2.0, swtpm keeps its state in the home's `tpm/`, and no swtpm
/// outlives QEMU, whether QEMU powers off, is killed or never starts.
@Suite(.serialized) struct TPMBootTests {
    @Test(.requiresGuest, .requires("swtpm")) func theGuestSeesATPMAndSwtpmEndsWithQEMU() throws {
        guard requireTool("swtpm") != nil, let lab = try BootLab.guest() else { return }
        let home = try lab.makeVM("tpm", "vm_tpm=2.0\n")
        // Whatever a failed step left: only processes working in this test's home.
        defer {
            for line in ProcessTable.cwdMatches(home) {
                if let pid = Int32(line.prefix { $0 != " " }) { kill(pid, SIGKILL) }
            }
        }
        func swtpmPid() -> Int32? {
            (try? String(contentsOfFile: home + "/tpm.pid", encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }

        // A boot with the TPM, stopped by vmdown.
        let up = try lab.up(home)
        try #require(up.status == 0, "\(up.err)")
        #expect(lab.readyOrDump(home), "\(lab.serial(home))")
        #expect(lab.serial(home).contains("VMTOOLS-GUEST: TPM 2 /dev/tpmrm0"), "\(lab.serial(home))")
        let first = try #require(swtpmPid())
        #expect(ProcessTable.isLive(first))
        for f in ["tpm.sock", "tpm.pid", "tpm.log"] { #expect(FileSystem.mode(home + "/" + f) == 0o600, "\(f)") }
        #expect(FileSystem.mode(home + "/tpm") == 0o700)
        let down = try lab.down(home)
        #expect(down.status == 0, "\(down.err)")
        #expect(waitUntil(10) { !ProcessTable.isLive(first) }, "swtpm outlived QEMU")
        #expect((try? FileManager.default.attributesOfItem(atPath: home + "/tpm/tpm2-00.permall")[.size] as? Int) ?? 0 > 0)
        #expect(!lab.s.exists("tpm/tpm.sock") && !lab.s.exists("tpm/tpm.pid"))

        // Without it the guest sees none, and no swtpm runs.
        let plain = try lab.up(home, ["-o", "vm_tpm=none"])
        try #require(plain.status == 0, "\(plain.err)")
        #expect(lab.readyOrDump(home), "\(lab.serial(home))")
        #expect(lab.serial(home).contains("VMTOOLS-GUEST: TPM none no-tpmrm"), "\(lab.serial(home))")
        #expect(swtpmPid() == nil && !lab.s.exists("tpm/tpm.sock"))
        #expect(try lab.down(home).status == 0)

        // QEMU killed (vmdown -k): swtpm sees its control socket close.
        let again = try lab.up(home)
        try #require(again.status == 0, "\(again.err)")
        let second = try #require(swtpmPid())
        let killed = try lab.cli.run("vmdown", ["-k", "--", home])
        #expect(killed.status == 0, "\(killed.err)")
        #expect(waitUntil(10) { !ProcessTable.isLive(second) }, "swtpm outlived a killed QEMU")
        #expect(waitUntil(10) { !lab.s.exists("tpm/tpm.sock") })

        // QEMU refuses an option after swtpm started: nothing is left.
        let bad = try lab.up(home, ["-o", "vm_qemu_params=-nonsense-option"])
        #expect(bad.status == 1 && bad.err.contains("QEMU failed to start"), "\(bad.err)")
        #expect(ProcessTable.cwdMatches(home).isEmpty, "\(ProcessTable.cwdMatches(home))")
        #expect(!lab.s.exists("tpm/tpm.sock") && !lab.s.exists("tpm/tpm.pid"))
        #expect(lab.s.exists("tpm/tpm/tpm2-00.permall"), "an existing state is kept")
    }
}
