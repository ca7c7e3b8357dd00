import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// `vmsnap -l` shows what the images hold, not only what vmsnap made
/// (vmsnap(1), LISTING): a tag made by hand on one image is `incomplete`,
/// and a tag with control characters reaches the terminal escaped while
/// `-j` carries it exactly.
@Suite(.serialized) struct SnapshotListTests {
    @Test(.requires("qemu-img", "qemu-io")) func aForeignTagIsListedIncompleteAndEscaped() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-io") != nil else { return }
        let cli = try CLI(Scratch())
        let vm = try SnapshotVM(cli, "vm", vars: false, tpm: false)
        let made = try cli.run("vmsnap", [vm.home, "ours"])
        try #require(made.status == 0, "\(made.err)")
        let evil = "x\u{1B}[2J\ny"
        let r = try Subprocess(SnapshotVM.qemuImg, ["snapshot", "-c", evil, vm.home + "/hdd2.qcow2"]).run()
        try #require(r.status == 0, "\(r.stderrText)")

        let list = try cli.run("vmsnap", ["-l", vm.home])
        #expect(list.status == 0, "\(list.err)")
        #expect(!list.out.contains("\u{1B}") && list.outLines.count == 4, "\(list.out)")
        let rows = list.outLines.dropFirst().filter { !$0.isEmpty }
        // Oldest first.
        try #require(rows.count == 2, "\(list.out)")
        #expect(rows[0].hasPrefix("ours ") && rows[0].contains(" stopped ") && rows[0].hasSuffix(" hdd1,hdd2"), "\(list.out)")
        #expect(rows[1].hasPrefix("x\\e[2J\\ny ") && rows[1].contains(" incomplete ") && rows[1].hasSuffix(" hdd2"), "\(list.out)")

        let json = try cli.run("vmsnap", ["-lj", vm.home])
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]], "\(json.out)")
        let foreign = try #require(doc.first { $0["name"] as? String == evil }, "\(json.out)")
        #expect(foreign["complete"] as? Bool == false && foreign["images"] as? [String] == ["hdd2"])
        #expect(doc.first { $0["name"] as? String == "ours" }?["complete"] as? Bool == true)
        // Such a name is none vmsnap takes, so the completion never offers it.
        let names = try cli.run("vmtools", ["--list", "snapshots", vm.home])
        #expect(names.out == "ours\n", "\(names.out)")
    }
}
