import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

@Suite struct RemoveTests {
    func tree(_ cli: CLI) throws -> String {
        let base = cli.scratch.url("base")
        try #require(try cli.run("vmcreate", ["-q", "-n", "-y", base]).status == 0)
        try #require(try cli.run("vmfork", ["-q", base, base + "/child", cli.scratch.url("elsewhere")]).status == 0)
        try #require(try cli.run("vmfork", ["-q", base + "/child", base + "/child/grandchild"]).status == 0)
        return base
    }

    @Test(.requires("qemu-img", "qemu-system-x86_64")) func aVMWithChildrenNeedsRecursion() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-system-x86_64") != nil else { return }
        let cli = try CLI(Scratch())
        let base = try tree(cli)
        let r = try cli.run("vmrm", ["-y", base])
        #expect(r.status == 1 && r.err.contains("has children") && r.err.contains("vmrm -r"))
        #expect(cli.scratch.exists("base/vm.settings") && !cli.scratch.exists("base/.vm.settings.lock"))
        let all = try cli.run("vmrm", ["-r", "-y", base])
        #expect(all.status == 0, "\(all.err)")
        #expect(!cli.scratch.exists("base") && !cli.scratch.exists("elsewhere"))
        #expect(!all.err.contains("WARNING") && !all.err.contains("ERROR"))
    }

    @Test(.requires("qemu-img", "qemu-system-x86_64")) func deletingAChildUpdatesItsParent() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-system-x86_64") != nil else { return }
        let cli = try CLI(Scratch())
        let base = try tree(cli)
        #expect(try cli.run("vmrm", ["-y", cli.scratch.url("elsewhere")]).status == 0)
        #expect(try String(contentsOfFile: base + "/childs.lst", encoding: .utf8) == base + "/child\n")
        #expect(try cli.run("vmrm", ["-r", "-y", base + "/child"]).status == 0)
        #expect(!cli.scratch.exists("base/childs.lst"), "an empty child list is no file")
        #expect(try cli.run("vmup", ["-n", base]).status == 0, "no children: read-write again")
    }

    @Test(.requires("qemu-img", "qemu-system-x86_64")) func keepLeavesDisksAndUnknownFiles() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-system-x86_64") != nil else { return }
        let cli = try CLI(Scratch())
        let base = cli.scratch.url("base")
        try #require(try cli.run("vmcreate", ["-q", "-n", "-y", base]).status == 0)
        try cli.scratch.write("base/notes.txt", "mine\n")
        let r = try cli.run("vmrm", ["-k", "-y", base])
        #expect(r.status == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: base).sorted() == ["hdd.qcow2", "notes.txt"])
        #expect(r.err.contains("NOTICE") && r.err.contains("kept"))
    }

    @Test(.requires("qemu-img", "qemu-system-x86_64")) func withoutATerminalNothingIsDeletedUnasked() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-system-x86_64") != nil else { return }
        let cli = try CLI(Scratch())
        let base = cli.scratch.url("base")
        try #require(try cli.run("vmcreate", ["-q", "-n", "-y", base]).status == 0)
        let r = try cli.run("vmrm", [base])
        #expect(r.status == 3)
        #expect(cli.scratch.exists("base/vm.settings") && !cli.scratch.exists("base/.vm.settings.lock"))
    }

    @Test(.requires("qemu-system-x86_64")) func aRunningVMIsNeverDeleted() throws {
        guard let qemu = requireTool("qemu-system-x86_64") else { return }
        let cli = try CLI(Scratch())
        try cli.scratch.write("outer/vm.settings", "vm_name=outer\n")
        try cli.scratch.write("outer/inner/vm.settings", "vm_name=inner\n")
        let inner = cli.scratch.url("outer/inner")
        try #require(try Subprocess(qemu, ["-machine", "none", "-nodefaults", "-display", "none", "-daemonize", "-pidfile", inner + "/qemu.pid"]).run().status == 0)
        let pid = try #require(Int32(try cli.scratch.read("outer/inner/qemu.pid").trimmingCharacters(in: .whitespacesAndNewlines)))
        defer { kill(pid, SIGKILL) }
        let r = try cli.run("vmrm", ["-y", cli.scratch.url("outer")])
        #expect(r.status == 1 && r.err.contains("holds the running VM"))
        #expect(cli.scratch.exists("outer/vm.settings") && cli.scratch.exists("outer/inner/vm.settings"))
        let direct = try cli.run("vmrm", ["-y", inner])
        #expect(direct.status == 1 && direct.err.contains("is running"))
    }
    /// A parent that cannot be read keeps listing its child: refused, as
    /// with a read-only parent, and nothing is deleted.
    @Test(.requires("qemu-img", "qemu-system-x86_64", "setpriv")) func aChildOfAnUnreadableParentIsKept() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-system-x86_64") != nil else { return }
        let cli = try CLI(Scratch())
        let base = try tree(cli)
        let elsewhere = cli.scratch.url("elsewhere")
        var command = "vmrm"
        if geteuid() == 0 {
            // Root reads everything: the command runs as nobody.
            guard let setpriv = requireTool("setpriv") else { return }
            #expect(try Subprocess("/bin/chown", ["-R", "65534:65534", cli.scratch.path]).run().status == 0)
            try cli.scratch.writeScript("bin/vmrm-as-nobody", "#!/bin/sh\nexec \(setpriv) --reuid=65534 --regid=65534 --clear-groups -- \"$(dirname \"$0\")/vmrm\" \"$@\"\n")
            command = "vmrm-as-nobody"
        }
        chmod(base, 0)
        defer { chmod(base, 0o755) }
        let r = try cli.run(command, ["-y", elsewhere])
        chmod(base, 0o755)
        #expect(r.status == 1, "\(r.err)")
        #expect(r.err.contains("ERROR: \(base): its child list cannot be updated (the parent home is not accessible"), "\(r.err)")
        #expect(FileManager.default.fileExists(atPath: elsewhere + "/vm.settings"))
        #expect(try String(contentsOfFile: base + "/childs.lst", encoding: .utf8).contains(elsewhere + "\n"))
        #expect(try cli.run("vmfix", ["-ran", cli.scratch.path]).status == 0)
    }
}
