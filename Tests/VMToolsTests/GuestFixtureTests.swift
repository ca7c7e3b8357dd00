import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// The test guest itself: it boots as a CD and as a disk, reports its disks,
/// writes and reads a data disk on request (through fw_cfg), and powers off on
/// the ACPI button. Later tests prove vmtools' behaviour with it.
@Suite(.serialized) struct GuestFixtureTests {
    @Test(.requiresGuest) func bootsAsACDAndKeepsWhatItWritesOnAPersistentDisk() throws {
        guard Guest.build() != nil else { return }
        let s = Scratch()
        let data = s.url("data.qcow2")
        #expect(try Subprocess("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", data, "16M"]).run().status == 0)
        let drives = ["-drive", "file=\(Guest.iso),format=raw,if=ide,index=2,media=cdrom,read-only=on",
                      "-drive", "file=\(data),format=qcow2,if=ide,index=1,media=disk"]
        try s.mkdir("1")
        let first = try RawGuest(in: s.url("1"), drives + ["-boot", "order=d", "-fw_cfg", "name=opt/vmtools/cmd,string=write 0:0:1:0 kept across boots"])
        #expect(first.waitFor("VMTOOLS-GUEST: READY"), "\(first.log)")
        #expect(first.log.contains("VMTOOLS-GUEST: WROTE sda"))
        #expect(first.log.contains("addr=1:0:0:0"))  // the CD-ROM, secondary master
        #expect(try first.powerOff(), "\(first.log)")
        #expect(first.log.contains("VMTOOLS-GUEST: POWEROFF"))
        try s.mkdir("2")
        let second = try RawGuest(in: s.url("2"), drives + ["-boot", "order=d", "-fw_cfg", "name=opt/vmtools/cmd,string=read 0:0:1:0"])
        #expect(second.waitFor("VMTOOLS-GUEST: READY"), "\(second.log)")
        #expect(second.log.contains("VMTOOLS-GUEST: DATA kept across boots"))
        #expect(try second.powerOff())
    }

    @Test(.requiresGuest) func bootsFromTheQcow2DiskForm() throws {
        guard Guest.build() != nil else { return }
        let s = Scratch()
        let g = try RawGuest(in: s.path, ["-drive", "file=\(Guest.qcow2),format=qcow2,if=ide,index=0,media=disk,snapshot=on"])
        #expect(g.waitFor("VMTOOLS-GUEST: READY"), "\(g.log)")
        #expect(g.log.contains("DISK sda size=32768 addr=0:0:0:0"))
        #expect(try g.powerOff())
    }

    @Test(.requiresGuest) func theOVAHoldsAnOVFAndAStreamOptimizedVMDK() throws {
        guard Guest.build() != nil else { return }
        let list = try Subprocess("/bin/tar", ["-tf", Guest.ova]).run()
        #expect(list.stdoutText == "guest.ovf\nguest-disk1.vmdk\n")
        let s = Scratch()
        #expect(try Subprocess("/bin/tar", ["-xf", Guest.ova, "-C", s.path]).run().status == 0)
        let info = try QemuImg.info(s.url("guest-disk1.vmdk"), backingChain: false, environment: ["PATH": "/usr/bin:/bin"])
        #expect(info["format"]?.stringValue == "vmdk")
        #expect(info["format-specific"]?["data"]?["create-type"]?.stringValue == "streamOptimized")
        #expect(try String(contentsOfFile: s.url("guest.ovf"), encoding: .utf8).contains("ovf:href=\"guest-disk1.vmdk\""))
    }
}
