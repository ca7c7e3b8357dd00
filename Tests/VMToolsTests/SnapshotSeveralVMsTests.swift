import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// `vmsnap` on a lab of VMs at once (vmsnap(1), SEVERAL VMS): the last
/// operand is the name, every one before it a VM home; each VM is done on
/// its own, a failure on one is reported and the others still run, exit 1
/// if any failed. `-l` takes homes only: a heading per VM, and with `-j` an
/// object keyed by home.
@Suite(.serialized) struct SnapshotSeveralVMsTests {
    @Test(.requires("qemu-img", "qemu-io")) func aLabIsSnapshottedRevertedListedAndDeletedInOneCommand() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil else { return }
        let cli = try CLI(Scratch())
        let a = try SnapshotVM(cli, "a"), b = try SnapshotVM(cli, "b", vars: false, tpm: false)
        // c cannot hold a snapshot (a raw disk): it fails, a and b are still done.
        let c = try SnapshotVM(cli, "c", settings: "vm_storage_hdd3_enable=yes\nvm_storage_hdd3_backend=hdd3.raw\n")
        let raw = try Subprocess(SnapshotVM.qemuImg, ["create", "-q", "-f", "raw", c.home + "/hdd3.raw", "1M"]).run()
        try #require(raw.status == 0)
        for vm in [a, b, c] { try vm.write(0xA1) }

        let made = try cli.run("vmsnap", [a.home, c.home, b.home, "lab"])
        #expect(made.status == 1, "\(made.err)")
        #expect(made.errLines == ["vmsnap: INFO: \(a.home): snapshot lab saved (stopped: hdd1, hdd2, vars, tpm)",
                                  made.errLines.count == 3 ? made.errLines[1] : "",
                                  "vmsnap: INFO: \(b.home): snapshot lab saved (stopped: hdd1, hdd2)"], "\(made.err)")
        #expect(made.errLines.count == 3 && made.errLines[1].hasPrefix("vmsnap: ERROR: \(c.home): hdd3 "), "\(made.err)")
        #expect(try a.holding("lab") == ["hdd1", "hdd2", "vars"] && b.holding("lab") == ["hdd1", "hdd2"] && c.holding("lab").isEmpty)

        // Both go back; the listing shows each under its home.
        for vm in [a, b] { try vm.write(0xB2) }
        let reverted = try cli.run("vmsnap", ["-r", a.home, b.home, "lab"])
        #expect(reverted.status == 0, "\(reverted.err)")
        #expect(try a.state() == 0xA1 && b.state() == 0xA1)
        let list = try cli.run("vmsnap", ["-l", a.home, b.home])
        #expect(list.status == 0, "\(list.err)")
        let lines = list.outLines
        try #require(lines.count == 8, "\(list.out)")
        #expect(lines[0] == "\(a.home):" && lines[1].hasPrefix("NAME ") && lines[2].hasPrefix("lab ") && lines[2].hasSuffix(" hdd1,hdd2,vars,tpm"), "\(list.out)")
        #expect(lines[3] == "" && lines[4] == "\(b.home):" && lines[6].hasPrefix("lab ") && lines[6].hasSuffix(" hdd1,hdd2") && lines[7] == "", "\(list.out)")
        let json = try cli.run("vmsnap", ["-lj", a.home, b.home])
        #expect(json.status == 0, "\(json.err)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: [[String: Any]]], "\(json.out)")
        #expect(doc.keys.sorted() == [a.home, b.home])
        #expect(doc[a.home]?.first?["images"] as? [String] == ["hdd1", "hdd2", "vars"] && doc[a.home]?.first?["tpm"] as? Bool == true)
        #expect(doc[b.home]?.first?["images"] as? [String] == ["hdd1", "hdd2"] && doc[b.home]?.first?["tpm"] as? Bool == false)

        // One home that is none: the others are listed, exit 1.
        let missing = cli.scratch.url("missing")
        let partly = try cli.run("vmsnap", ["-l", a.home, missing])
        #expect(partly.status == 1 && partly.out.hasPrefix("\(a.home):\nNAME ") && partly.errLines.count == 1 && partly.err.contains(missing),
                "\(partly.out)\(partly.err)")
        // -l without operands lists the VM in the working directory, without a heading.
        let here = try cli.run("vmsnap", ["-l"], cwd: a.home)
        #expect(here.status == 0 && here.outLines.first?.hasPrefix("NAME ") == true && here.outLines.count == 3, "\(here.out)\(here.err)")

        let deleted = try cli.run("vmsnap", ["-d", a.home, b.home, "lab"])
        #expect(deleted.status == 0, "\(deleted.err)")
        #expect(try a.holding("lab").isEmpty && b.holding("lab").isEmpty)
        #expect(try cli.run("vmsnap", ["-l", a.home, b.home]).out == "\(a.home):\n\n\(b.home):\n")
    }
}
