import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// Messages with a list under them keep one item a line: escaping the
/// message must not turn its line ends into `\n` (a regression once).
@Suite struct ListedMessagesTests {
    @Test func vmfixListsEachLeftoverOnItsOwnLine() throws {
        let s = Scratch()
        try s.write("vms/a/vm.settings", "vm_name=a\n")
        try s.write("vms/a/serial.log", "boot\n")
        try s.write("vms/a/qemu.pid", "999999\n")
        let r = try CLI(s).run("vmfix", ["-d", "-n", s.url("vms/a")])
        #expect(!r.err.contains("\\n"), "\(r.err)")
        #expect(r.err.contains("vmfix: NOTICE: leftover run-time files:\n"), "\(r.err)")
        #expect(r.err.contains("\n    \(s.url("vms/a/serial.log"))\n") && r.err.contains("\n    \(s.url("vms/a/qemu.pid"))\n"), "\(r.err)")
    }
}
