import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// The end check of the tests' shared lab (BootLab): a QEMU a test leaves
/// running fails that test, named by pid and command line, and is killed
/// by pid; a QEMU that is not the lab's is neither reported nor touched.
@Suite(.serialized) struct BootLabTests {
    @Test(.requires("qemu-system-x86_64")) func aQEMULeftRunningFailsTheTestAndIsKilled() throws {
        guard requireTool("qemu-system-x86_64") != nil else { return }
        let lab = try BootLab()
        // Another test's QEMU, outside the lab's scratch directory.
        let elsewhere = Scratch()
        let bystander = try RawGuest(in: elsewhere.path, [])
        let bystanderPid = try #require(bystander.pid)
        // An empty CD-ROM: nothing boots, QEMU runs until it is stopped.
        try lab.s.write("vm/vm.settings", "vm_name=vm\nvm_storage_cdrom1_enable=yes\n")
        let home = lab.s.url("vm")
        let up = try lab.up(home)
        try #require(up.status == 0, "\(up.err)")
        let pid = try #require(lab.pid(home))
        #expect(lab.leftovers().map(\.pid) == [pid])

        // What the lab does when it ends: the test gets an issue naming the QEMU.
        let pidFile = home + "/qemu.pid"
        var swept: [QemuProcess] = []
        withKnownIssue("a QEMU left running fails its test") {
            swept = lab.sweep()
        } matching: { issue in
            issue.comments.contains { $0.rawValue.contains("pid \(pid): ") && $0.rawValue.contains(" -pidfile \(pidFile) ") }
        }
        #expect(swept.map(\.pid) == [pid])
        #expect(QemuProcess.read(pid: pid) == nil, "the leftover is killed")
        #expect(lab.leftovers().isEmpty)
        #expect(QemuProcess.read(pid: bystanderPid) != nil, "another test's QEMU is left alone")
    }
}
