import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// Errors name what the user typed, or the path that is wrong (issue 10, B9 and C4).
@Suite struct OperandReportTests {
    @Test func vmpsDNamesAPathThatIsNotThere() throws {
        let s = Scratch()
        try s.write("stopped/vm.settings", "vm_name=stopped\n")
        let cli = try CLI(s)
        // A stopped VM: quietly nothing to list.
        let stopped = try cli.run("vmps", ["-d", s.url("stopped")])
        #expect(stopped.status == 3 && stopped.out.isEmpty && stopped.err.isEmpty)
        for args in [["-d"], ["-n", "-d"], ["-j", "-d"]] {
            let r = try cli.run("vmps", args + ["stopped", "nowhere", "no/such/dir"], cwd: s.path)
            #expect(r.status == 1, "\(args)")
            #expect(r.err == "vmps: ERROR: nowhere: no such file or directory\nvmps: ERROR: \(s.url("no")): no such directory\n", "\(args)")
        }
    }

    @Test func vmdownReportsTheOperandAsGiven() throws {
        let s = Scratch()
        try s.write("vm/vm.settings", "vm_name=vm\n")
        let r = try CLI(s).run("vmdown", ["vm/vm.settings", "vm"], cwd: s.path)
        #expect(r.status == 3)
        #expect(r.err.hasPrefix("vmdown: ERROR: vm/vm.settings: not running\nvmdown: ERROR: vm: not running\n"), "\(r.err)")
        let m = try CLI(s).run("vmmon", ["-c", "info status", "vm/vm.settings"], cwd: s.path)
        #expect(m.status == 1 && m.err.hasPrefix("vmmon: ERROR: vm/vm.settings: not running"), "\(m.err)")
    }

    @Test func aMissingParentDirectoryIsNamed() throws {
        let s = Scratch()
        try s.write("src/vm.settings", "vm_name=src\n")
        try s.write("file", "")
        let cli = try CLI(s)
        let cases: [(String, [String], String)] = [
            ("vmcreate", ["-n", "-y", s.url("vms/web")], "\(s.url("vms")): no such directory"),
            ("vmcreate", ["-n", "-y", "deep/er/web"], "\(s.url("deep")): no such directory"),
            ("vmcreate", ["-n", "-y", "file/web"], "\(s.url("file")): not a directory"),
            ("vmcp", [s.url("src"), s.url("vms/copy")], "\(s.url("vms")): no such directory"),
            ("vmmv", [s.url("src"), s.url("vms/moved")], "\(s.url("vms")): no such directory"),
        ]
        for (command, args, message) in cases {
            let r = try cli.run(command, args, cwd: s.path)
            #expect(r.status == 1, "\(command) \(args)")
            #expect(r.err == "\(command): ERROR: \(message)\n", "\(command) \(args)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.path).sorted() == ["bin", "etc", "file", "home", "share", "src"])
        #expect(try s.read("src/vm.settings") == "vm_name=src\n")
    }
}
