import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// A small VM tree whose disks each hold a distinct pattern, so any disk
/// found later can be traced back to the VM whose data it must hold:
///
///     tree/R          root, 'R' at 0
///     tree/R/B        fork of R, 'B' at 1 MiB
///     tree/R/B/C      fork of B, 'C' at 2 MiB
///     tree/D          fork of R living elsewhere, 'D' at 3 MiB
///
/// `refs/<name>.raw` holds each VM's full disk content, for `qemu-img compare`.
struct Tree {
    let cli: CLI
    let root: String
    static let names = ["R", "B", "C", "D"]

    var qemuImg: String { "/usr/bin/qemu-img" }

    func path(_ name: String) -> String {
        switch name {
        case "R": return root + "/R"
        case "B": return root + "/R/B"
        case "C": return root + "/R/B/C"
        case "D": return root + "/D"
        default: return root + "/" + name
        }
    }

    init(_ cli: CLI, at rel: String = "tree") throws {
        self.cli = cli
        try cli.scratch.mkdir(rel)
        root = cli.scratch.url(rel)
        try cli.scratch.mkdir("refs")
        let r = try cli.run("vmcreate", ["-q", "-n", "-y", "-o", "vm_ram_size=256M", "-o", "vm_storage_hdd1_createsize=8M", "--", path("R")])
        try #require(r.status == 0, "\(r.err)")
        try write("R", pattern: 0x52, at: 0)
        for (name, parent, pattern, offset) in [("B", "R", 0x42, 1), ("C", "B", 0x43, 2), ("D", "R", 0x44, 3)] {
            let f = try cli.run("vmfork", ["-q", path(parent), path(name)])
            try #require(f.status == 0, "\(f.err)")
            try write(name, pattern: pattern, at: offset)
        }
        for name in Self.names {
            let c = try Subprocess(qemuImg, ["convert", "-O", "raw", path(name) + "/hdd.qcow2", refs(name)]).run()
            try #require(c.status == 0, "\(c.stderrText)")
        }
    }

    func refs(_ name: String) -> String { cli.scratch.url("refs/\(name).raw") }

    func write(_ name: String, pattern: Int, at mib: Int) throws {
        let r = try Subprocess("/usr/bin/qemu-io", ["-c", "write -P \(pattern) \(mib)M 1M", path(name) + "/hdd.qcow2"]).run()
        try #require(r.status == 0, "\(r.stderrText)")
    }

    /// Which original VM's data the disk holds, through its whole backing chain.
    func content(of image: String) -> String? {
        Self.names.first { name in
            (try? Subprocess(qemuImg, ["compare", "-q", "-F", "raw", image, refs(name)]).run().status) == 0
        }
    }

    /// Every VM home below `dir` (itself included).
    func homes(below dir: String? = nil) -> [String] {
        let start = dir ?? root
        let all = [start] + FileSystem.subdirectories(start)
        return all.filter { FileManager.default.fileExists(atPath: $0 + "/vm.settings") }
    }

    /// Paths of everything below the root (not vm.settings contents), for
    /// comparing layouts.
    func listing() -> [String] {
        let e = FileManager.default.enumerator(atPath: root)
        var out: [String] = []
        while let p = e?.nextObject() as? String { out.append(p) }
        return out.sorted()
    }

    func settings(_ home: String) throws -> VMSettingsFile { try VMSettingsFile.read(home + "/vm.settings") }

    func children(_ home: String) -> [String] {
        // No childs.lst is no children: the list goes when it empties.
        textIfPresent(home + "/childs.lst").split(separator: "\n").map(String.init)
    }

    func backing(_ image: String) throws -> String? {
        try QemuImg.backing(of: image, environment: ["PATH": "/usr/bin:/bin"])?.path
    }

    /// Leftovers that no successful or repaired command may leave.
    func leftovers() -> [String] {
        listing().filter { $0.contains("vmtools-backup.") || $0.hasSuffix(".vm.settings.lock") || $0.contains(".tmp.") }
    }

    /// `vmfix -ran` on the whole tree: 0 when everything is consistent.
    func consistent() throws -> Bool {
        let r = try cli.run("vmfix", ["-ran", root])
        if r.status != 0 { Issue.record("vmfix -ran: \(r.status)\n\(r.err)") }
        return r.status == 0
    }
}
