import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// `vmfix -r` on a large tree reads each directory once: every check used
/// to walk the tree again (Benchmarks/README.md, scale).
@Suite struct FixScaleTests {
    /// 1,000 VMs, settings only, each home inside its parent's: root, 9
    /// children, 90 grandchildren, 900 great-grandchildren. The last
    /// great-grandchild is missing from its parent's child list and the one
    /// before it left a pid file behind, so both checks must reach the bottom.
    @Test func aThousandVMTreeIsWalkedOnce() throws {
        let s = Scratch()
        let global = try resolver(s).loadGlobal()
        let settings = global.fileNames.settings, childs = global.fileNames.childs
        let root = s.url("tree/root")
        var directories = [s.url("tree")]
        func vm(_ home: String, parent: String?) throws {
            try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
            try Data(((parent.map { "parent \($0)\n" } ?? "") + "vm_name=\(home.lastPathComponent)\n").utf8)
                .write(to: URL(fileURLWithPath: home + "/" + settings))
            directories.append(home)
        }
        func list(_ parent: String, _ children: [String]) throws {
            try Data(children.sorted(by: bytewiseLess).map { $0 + "\n" }.joined().utf8).write(to: URL(fileURLWithPath: parent + "/" + childs))
        }
        try vm(root, parent: nil)
        let cs = (1...9).map { root + "/c\($0)" }
        try list(root, cs)
        for c in cs {
            try vm(c, parent: root)
            let gs = (0...9).map { c + "/g\($0)" }
            try list(c, gs)
            for g in gs {
                try vm(g, parent: c)
                let ks = (0...9).map { g + "/k\($0)" }
                for k in ks { try vm(k, parent: g) }
                try list(g, g == root + "/c9/g9" ? Array(ks.dropLast()) : ks)
            }
        }
        #expect(directories.count == 1001)
        let lastVM = root + "/c9/g9/k9", pidFile = root + "/c9/g9/k8/" + global.fileNames.pid
        try s.write(String(pidFile.dropFirst(s.path.count + 1)), "4242\n")

        let log = s.url("fix.log")
        let fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        defer { close(fd) }
        let console = Console(command: "vmfix", out: OutputStream(fd: fd), err: OutputStream(fd: fd))
        let context = Context(environment: ["HOME": s.url("home")], cwd: s.path, paths: s.paths, console: console)
        let ((status, listings), locks) = HomeLock.countingAcquisitions {
            FileSystem.countingListings { VMTools.run(VMFixCommand.self, ["-rAn", s.url("tree")], context) }
        }
        let text = try String(contentsOfFile: log, encoding: .utf8)
        #expect(status == ExitCode.soft.rawValue, "\(text)")
        #expect(text.contains("\(lastVM): child link missing in its parent \(root)/c9/g9"), "\(text)")
        #expect(text.contains("    \(pidFile)\n"), "\(text)")
        #expect(listings <= directories.count, "\(listings) directory listings for \(directories.count) directories")
        // Each VM locked once (not again as its children's parent), and
        // shared: -n writes no lock link.
        let vms = directories.count - 1
        #expect(locks.exclusive == 0, "\(locks.exclusive) lock links written by vmfix -n")
        #expect(locks.shared <= vms, "\(locks.shared) locks for \(vms) VMs")
        // -n changed nothing.
        #expect(try s.read("tree/root/c9/g9/" + childs).split(separator: "\n").count == 9)
        #expect(s.exists(String(pidFile.dropFirst(s.path.count + 1))))

        // The repair locks each VM once too (its lock link, as always), and
        // k8 once more for -d to remove its pid file.
        let (repair, repairLocks) = HomeLock.countingAcquisitions {
            VMTools.run(VMFixCommand.self, ["-rA", s.url("tree")], context)
        }
        let repaired = try String(contentsOfFile: log, encoding: .utf8)
        #expect(repair == ExitCode.soft.rawValue, "\(repaired)")
        #expect(repaired.contains("lists \(lastVM) again"), "\(repaired)")
        #expect(repairLocks.exclusive <= vms + 1 && repairLocks.shared == 0, "\(repairLocks) for \(vms) VMs")
        #expect(try s.read("tree/root/c9/g9/" + childs).split(separator: "\n").count == 10)
        #expect(!s.exists(String(pidFile.dropFirst(s.path.count + 1))))
        #expect(try FileManager.default.subpathsOfDirectory(atPath: s.url("tree")).filter { $0.hasSuffix(global.fileNames.lock) } == [])
        let again = VMTools.run(VMFixCommand.self, ["-rAn", s.url("tree")], context)
        let last = try String(contentsOfFile: log, encoding: .utf8).dropFirst(repaired.utf8.count)
        #expect(again == ExitCode.success.rawValue && last.isEmpty, "\(last)")
    }
}
