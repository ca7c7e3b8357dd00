import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// A snapshot of a stopped VM puts back everything the guest changed
/// (vmsnap(1)): both qcow2 disks, the UEFI variables and the TPM state. The
/// guest writes a marker on each disk and a UEFI variable, the VM is
/// snapshotted, the guest changes both markers and adds a variable (the
/// TPM's state changes at every boot: TPM2_Startup counts resets), the VM is
/// reverted, and the next boot reads the first markers and variable back,
/// without the added one. Three boots of the UEFI guest
/// with a TPM. `vmsnap -l`, `-j` and `qemu-img snapshot -l` agree; `-d`
/// removes it from every image.
@Suite(.serialized) struct SnapshotStoppedTests {
    /// The files of the home's `tpm/` with their digests.
    func tpmState(_ home: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: home + "/tpm") {
            out[name] = try SHA256.file(home + "/tpm/" + name)
        }
        return out
    }

    /// Boots the guest running `commands` (one a line, in one boot), waits
    /// for them and stops it; returns the serial console.
    func boot(_ lab: BootLab, _ home: String, _ commands: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let file = try lab.s.write("cmd-\(commands.count)-\(UUID().uuidString)", commands.joined(separator: "\n") + "\n")
        let up = try lab.up(home, ["-o", "vm_qemu_params=-usbdevice tablet -fw_cfg name=opt/vmtools/cmd,file=\(file)"])
        try #require(up.status == 0, "\(up.err)", sourceLocation: sourceLocation)
        let ready = lab.readyOrDump(home)
        let serial = lab.serial(home)
        let down = try lab.down(home)
        #expect(down.status == 0, "\(down.err)", sourceLocation: sourceLocation)
        try #require(ready, "\(serial)", sourceLocation: sourceLocation)
        #expect(serial.contains("VMTOOLS-GUEST: FIRMWARE uefi") && serial.contains("VMTOOLS-GUEST: TPM 2 /dev/tpmrm0"), "\(serial)",
                sourceLocation: sourceLocation)
        return serial
    }

    /// `qemu-img snapshot -l IMAGE`: per tag, its DATE column (local time) and VM SIZE.
    func qemuImgSnapshots(_ image: String) throws -> [String: (date: String, vmSize: String)] {
        let r = try Subprocess(SnapshotVM.qemuImg, ["snapshot", "-l", image]).run()
        try #require(r.status == 0, "\(r.stderrText)")
        var out: [String: (date: String, vmSize: String)] = [:]
        // ID TAG VM-SIZE(2 words) DATE(2 words) VM-CLOCK ICOUNT, after two heading lines.
        for line in r.stdoutText.split(separator: "\n").dropFirst(2) {
            let w = line.split(separator: " ").map(String.init)
            guard w.count >= 6 else { continue }
            out[w[1]] = ("\(w[4]) \(w[5])", "\(w[2]) \(w[3])")
        }
        return out
    }

    @Test(.requiresGuest, .requiresOVMF, .requires("swtpm", "qemu-io")) func aRevertBringsBackBothDisksTheVariablesAndTheTPM() throws {
        guard FirmwareBootTests().ovmf(), requireTool("swtpm") != nil, requireTool("qemu-io") != nil,
              let lab = try BootLab.guest() else { return }
        let home = try lab.makeVM("snap", """
            vm_storage_hdd1_enable=yes
            vm_storage_hdd1_backend=disk1.qcow2
            vm_storage_hdd_interface=virtio
            vm_firmware=uefi
            vm_tpm=2.0
            vm_ram_size=256M
            vm_boot_kernel=\(Guest.directory)/vmlinuz
            vm_boot_initrd=\(Guest.directory)/initrd.gz
            vm_boot_append='console=ttyS0 panic=-1 loglevel=3'
            """)
        let made = try Subprocess(SnapshotVM.qemuImg, ["create", "-q", "-f", "qcow2", home + "/disk1.qcow2", "16M"]).run()
        try #require(made.status == 0, "\(made.stderrText)")
        // Whatever a failed step left: only processes working in this test's home.
        defer {
            for line in ProcessTable.cwdMatches(home) {
                if let pid = Int32(line.prefix { $0 != " " }) { kill(pid, SIGKILL) }
            }
        }
        let images = [("hdd1", home + "/disk1.qcow2"), ("hdd2", home + "/data.qcow2"), ("vars", home + "/firmware-vars.qcow2")]
        let tag = "\(getpid())"

        // 1: the first markers and variable.
        var serial = try boot(lab, home, ["write vda one-first-\(tag)", "write vdb two-first-\(tag)", "efiwrite snapvar first-\(tag)"])
        #expect(serial.contains("VMTOOLS-GUEST: EFIWROTE snapvar") && serial.components(separatedBy: "VMTOOLS-GUEST: WROTE").count == 3, "\(serial)")
        let saved = try tpmState(home)
        #expect(!saved.isEmpty)
        let snap = try lab.cli.run("vmsnap", [home, "before"])
        #expect(snap.status == 0, "\(snap.err)")
        #expect(snap.err.contains("\(home): snapshot before saved (stopped: hdd1, hdd2, vars, tpm)"), "\(snap.err)")
        #expect(try tpmState(home + "/snapshots/before") == saved, "the TPM copy is the state")

        // 2: everything changed.
        // The guest cannot rewrite a variable (its busybox has no chattr to
        // lift efivarfs' immutable flag): it adds one, which must go again.
        serial = try boot(lab, home, ["write vda one-second", "write vdb two-second", "efiwrite snapnew second"])
        #expect(serial.contains("VMTOOLS-GUEST: EFIWROTE snapnew") && serial.components(separatedBy: "VMTOOLS-GUEST: WROTE").count == 3, "\(serial)")
        #expect(try tpmState(home) != saved, "a boot changes swtpm's state")

        // The listing, its JSON and qemu-img agree.
        let list = try lab.cli.run("vmsnap", ["-l", home])
        #expect(list.status == 0, "\(list.err)")
        let rows = list.outLines.filter { !$0.isEmpty }
        try #require(rows.count == 2, "\(list.out)")
        #expect(rows[0].split(separator: " ") == ["NAME", "DATE", "STATE", "VMSTATE", "IMAGES"])
        let row = rows[1].split(separator: " ").map(String.init)
        try #require(row.count == 6, "\(rows[1])")
        #expect(row[0] == "before" && row[3] == "stopped" && row[4] == "-" && row[5] == "hdd1,hdd2,vars,tpm", "\(rows[1])")
        for (label, image) in images {
            let seen = try qemuImgSnapshots(image)
            #expect(seen.keys.sorted() == ["before"], "\(label): \(seen.keys)")
            #expect(seen["before"]?.date == "\(row[1]) \(row[2])", "\(label): \(String(describing: seen["before"])) against \(rows[1])")
            #expect(seen["before"]?.vmSize == "0 B", "\(label): a stopped snapshot has no RAM")
        }
        let json = try lab.cli.run("vmsnap", ["-l", "-j", home])
        #expect(json.status == 0, "\(json.err)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]], "\(json.out)")
        try #require(doc.count == 1, "\(json.out)")
        #expect(doc[0]["name"] as? String == "before" && doc[0]["live"] as? Bool == false && doc[0]["vmstate_bytes"] as? Int == 0)
        #expect(doc[0]["images"] as? [String] == ["hdd1", "hdd2", "vars"] && doc[0]["tpm"] as? Bool == true && doc[0]["complete"] as? Bool == true)
        let date = try #require(doc[0]["date"] as? String)
        #expect(date.count == 20 && date.hasSuffix("Z") && date.contains("T"), "\(date)")

        // Reverted: the TPM at once, the rest as the next boot reads it.
        let revert = try lab.cli.run("vmsnap", ["-r", home, "before"])
        #expect(revert.status == 0, "\(revert.err)")
        #expect(revert.err.contains("\(home): reverted to snapshot before"), "\(revert.err)")
        #expect(try tpmState(home) == saved, "the TPM state is the snapshot's")
        #expect(!FileManager.default.fileExists(atPath: home + "/snapshots/.resume"), "a stopped snapshot resumes nothing")

        // 3: all four are back.
        serial = try boot(lab, home, ["read vda", "read vdb", "efiread snapvar", "efiread snapnew"])
        #expect(serial.contains("VMTOOLS-GUEST: DATA one-first-\(tag)"), "\(serial)")
        #expect(serial.contains("VMTOOLS-GUEST: DATA two-first-\(tag)"), "\(serial)")
        #expect(serial.contains("VMTOOLS-GUEST: EFIVAR snapvar first-\(tag)"), "\(serial)")
        #expect(serial.contains("VMTOOLS-GUEST: EFIVAR snapnew none"), "\(serial)")
        #expect(!serial.contains("DATA one-second") && !serial.contains("DATA two-second"), "\(serial)")

        // Deleted from every image, with its TPM copy; the VM's data stays.
        let delete = try lab.cli.run("vmsnap", ["-d", home, "before"])
        #expect(delete.status == 0, "\(delete.err)")
        for (label, image) in images { #expect(try qemuImgSnapshots(image).isEmpty, "\(label)") }
        #expect(!FileManager.default.fileExists(atPath: home + "/snapshots/before"))
        let empty = try lab.cli.run("vmsnap", ["-l", home])
        #expect(empty.status == 0 && empty.out.isEmpty, "\(empty.out)\(empty.err)")
    }
}
