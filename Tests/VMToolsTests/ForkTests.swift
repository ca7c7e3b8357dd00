import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

@Suite struct ForkTests {
    /// A parent VM with a qcow2 disk and a NIC, made by vmcreate.
    func parent(_ cli: CLI, _ name: String = "base") throws -> String {
        let home = cli.scratch.url(name)
        let r = try cli.run("vmcreate", ["-q", "-n", "-y", "-o", "vm_ram_size=256M", "--", home])
        try #require(r.status == 0, "\(r.err)")
        return home
    }

    @Test(.requires("qemu-img", "qemu-system-x86_64")) func aForkIsAnOverlayListedByItsParent() throws {
        guard let qemuImg = requireTool("qemu-img"), requireTool("qemu-system-x86_64") != nil else { return }
        let cli = try CLI(Scratch())
        let base = try parent(cli)
        let r = try cli.run("vmfork", [base, base + "/child"])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("INFO: \(base)/child: forked from '\(base)'"))
        let text = try String(contentsOfFile: base + "/child/vm.settings", encoding: .utf8)
        let body = String(text[text.firstRange(of: "### General ###")!.lowerBound...])
        let mac = try #require(text.split(separator: "\n").first { $0.hasPrefix("vm_networking_iface1_mac=") })
        let parentMac = try #require(try String(contentsOfFile: base + "/vm.settings", encoding: .utf8).split(separator: "\n").first { $0.hasPrefix("vm_networking_iface1_mac=") })
        #expect(mac != parentMac)
        #expect(body == """
        ### General ###

        parent \(base)
        vm_name=child

        ### Storage ###

        # HDD 1
        vm_storage_hdd1_backend=\(base)/child/hdd.qcow2

        ### Misc settings ###

        \(mac)


        """)
        #expect(try String(contentsOfFile: base + "/childs.lst", encoding: .utf8) == base + "/child\n")
        let info = try QemuImg.info(base + "/child/hdd.qcow2", backingChain: false, environment: ["PATH": "/usr/bin"])
        #expect(info["full-backing-filename"]?.stringValue == base + "/hdd.qcow2")
        #expect(info["backing-filename-format"]?.stringValue == "qcow2")
        #expect(try Subprocess(qemuImg, ["compare", "-q", base + "/hdd.qcow2", base + "/child/hdd.qcow2"]).run().status == 0)
        // The child inherits the rest; the parent now refuses read-write starts.
        let info2 = try cli.run("vminfo", ["-j", base + "/child"])
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(info2.out.utf8)) as? [[String: Any]])
        #expect(((doc[0]["settings"] as? [String: [String: Any]])?["vm_ram_size"]?["value"]) as? String == "256M")
        #expect(try cli.run("vmup", ["-n", base]).err.contains("has children"))
    }

    @Test(.requires("qemu-img", "qemu-system-x86_64")) func destinationsFollowTheDirectoryRule() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-system-x86_64") != nil else { return }
        let cli = try CLI(Scratch())
        let base = try parent(cli)
        try cli.scratch.mkdir("forks")
        #expect(try cli.run("vmfork", [base, cli.scratch.url("forks"), cli.scratch.url("forks"), cli.scratch.url("named")]).status == 0)
        #expect(cli.scratch.exists("forks/base/vm.settings") && cli.scratch.exists("forks/base_1/vm.settings") && cli.scratch.exists("named/vm.settings"))
        let list = try String(contentsOfFile: base + "/childs.lst", encoding: .utf8)
        #expect(list == [cli.scratch.url("forks/base"), cli.scratch.url("forks/base_1"), cli.scratch.url("named")].map { $0 + "\n" }.joined())
    }

    @Test(.requires("qemu-img", "qemu-system-x86_64")) func snapshotKeepAndOverrides() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-system-x86_64") != nil else { return }
        let cli = try CLI(Scratch())
        let base = try parent(cli)
        let r = try cli.run("vmfork", ["-s", "-k", "-o", "vm_ram_size=1G", "-o", "vm_name=Ann's fork", base, cli.scratch.url("snap")])
        #expect(r.status == 0, "\(r.err)")
        let f = try VMSettingsFile.read(cli.scratch.url("snap/vm.settings"))
        #expect(f.value("vm_storage_hdd1_backend") == "snap:\(base)/hdd.qcow2")
        #expect(f.value("vm_networking_iface1_mac") == nil)
        #expect(f.value("vm_ram_size") == "1G")
        #expect(f.value("vm_name") == "Ann's fork")
        #expect(try FileManager.default.contentsOfDirectory(atPath: cli.scratch.url("snap")).sorted() == ["vm.settings"])
    }

    @Test(.requires("qemu-img", "qemu-system-x86_64")) func aFailedForkLeavesNothing() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-system-x86_64") != nil else { return }
        let cli = try CLI(Scratch())
        let base = try parent(cli)
        #expect(try cli.run("vmfork", [base, cli.scratch.url("ok")]).status == 0)
        try FileManager.default.removeItem(atPath: base + "/hdd.qcow2")
        let r = try cli.run("vmfork", [base, cli.scratch.url("broken")])
        #expect(r.status == 1)
        #expect(r.err.contains("vm_storage_hdd1_backend"))
        #expect(!cli.scratch.exists("broken"))
        #expect(try String(contentsOfFile: base + "/childs.lst", encoding: .utf8) == cli.scratch.url("ok") + "\n")
        #expect(!cli.scratch.exists("base/.vm.settings.lock"))
    }

    @Test(.requires("qemu-img", "qemu-system-x86_64")) func twentyParallelForksAreAllListed() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-system-x86_64") != nil else { return }
        let cli = try CLI(Scratch())
        let base = try parent(cli)
        var procs: [Process] = []
        for k in 0..<20 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: cli.bin + "/vmfork")
            p.arguments = ["-q", base, cli.scratch.url("f\(k)")]
            p.environment = cli.environment
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            procs.append(p)
        }
        for p in procs { p.waitUntilExit() }
        #expect(procs.allSatisfy { $0.terminationStatus == 0 })
        let list = try String(contentsOfFile: base + "/childs.lst", encoding: .utf8)
        #expect(list == (0..<20).map { cli.scratch.url("f\($0)") }.sorted(by: bytewiseLess).map { $0 + "\n" }.joined())
    }

    @Test(.requires("qemu-img", "qemu-system-x86_64")) func strangeNamesWork() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-system-x86_64") != nil else { return }
        let cli = try CLI(Scratch())
        let base = try parent(cli, "-dash base")
        for name in ["with space", "quote'd", "dollar$HOME", "star*?[x]", "back\\slash", "comma,a", "ünï", "-n", "--", ".dot", "tab\there"] {
            let r = try cli.run("vmfork", ["--", base, cli.scratch.url(name)])
            #expect(r.status == 0, "\(name): \(r.err)")
            let f = try VMSettingsFile.read(cli.scratch.url(name + "/vm.settings"))
            #expect(f.parent == base && f.value("vm_name") == name)
        }
        let nl = try cli.run("vmfork", ["--", base, cli.scratch.url("new\nline")])
        #expect(nl.status == 1 && nl.err.contains("newline"))
    }

    @Test func usageErrors() throws {
        let cli = try CLI(Scratch())
        #expect(try cli.run("vmfork", ["-n", "a", "b"]).status == 2)
        #expect(try cli.run("vmfork", ["-c", "-f", "a", "b"]).status == 2)
        #expect(try cli.run("vmfork", ["-a", "-c", "a", "b"]).status == 2)
        #expect(try cli.run("vmfork", ["only-one"]).status == 2)
    }
}
