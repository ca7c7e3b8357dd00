import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// A stopped VM for the snapshot suites that boot nothing: two qcow2 hard
/// disks (`hdd1.qcow2`, `hdd2.qcow2`), optionally a UEFI variable store
/// (`firmware-vars.qcow2`, a plain qcow2 here) and a TPM state directory
/// (`tpm/`). States are told apart by a byte pattern qemu-io writes at the
/// start of every image and by the TPM file's text (vmsnap(1)).
struct SnapshotVM {
    let cli: CLI
    let home: String
    let vars: Bool
    let tpm: Bool

    static let qemuImg = "/usr/bin/qemu-img"
    static let qemuIO = "/usr/bin/qemu-io"

    init(_ cli: CLI, _ name: String, vars: Bool = true, tpm: Bool = true, settings extra: String = "") throws {
        self.cli = cli
        self.vars = vars
        self.tpm = tpm
        home = cli.scratch.url(name)
        _ = try cli.scratch.write("\(name)/vm.settings", """
            vm_name=\(name)
            vm_storage_hdd1_enable=yes
            vm_storage_hdd1_backend=hdd1.qcow2
            vm_storage_hdd2_enable=yes
            vm_storage_hdd2_backend=hdd2.qcow2
            \(vars ? "vm_firmware=uefi\n" : "")\(tpm ? "vm_tpm=2.0\n" : "")\(extra)
            """)
        for image in ["hdd1.qcow2", "hdd2.qcow2"] + (vars ? ["firmware-vars.qcow2"] : []) {
            let r = try Subprocess(Self.qemuImg, ["create", "-q", "-f", "qcow2", home + "/" + image, "4M"]).run()
            try #require(r.status == 0, "\(r.stderrText)")
        }
        if tpm { try cli.scratch.mkdir("\(name)/tpm") }
    }

    /// The images a snapshot covers, by label.
    var images: [(label: String, path: String)] {
        [("hdd1", home + "/hdd1.qcow2"), ("hdd2", home + "/hdd2.qcow2")] + (vars ? [("vars", home + "/firmware-vars.qcow2")] : [])
    }

    var tpmFile: String { home + "/tpm/tpm2-00.permall" }

    /// Puts every image and the TPM file in state `pattern` (a byte).
    func write(_ pattern: UInt8) throws {
        for (_, path) in images {
            let r = try Subprocess(Self.qemuIO, ["-c", "write -P \(pattern) 0 64k", path]).run()
            try #require(r.status == 0, "\(r.stderrText)")
        }
        if tpm { try "tpm state \(pattern)\n".write(toFile: tpmFile, atomically: true, encoding: .utf8) }
    }

    /// Whether `path` holds `pattern` at its start (qemu-io read -P fails otherwise).
    func holds(_ path: String, _ pattern: UInt8) throws -> Bool {
        let r = try Subprocess(Self.qemuIO, ["-r", "-c", "read -P \(pattern) 0 64k", path]).run()
        return r.status == 0 && !r.stdoutText.contains("Pattern verification failed")
    }

    /// The state every image and the TPM file is in, or nil when they disagree.
    func state() throws -> UInt8? {
        var found: Set<UInt8?> = []
        for (_, path) in images {
            found.insert(try [UInt8(0xA1), 0xB2, 0xC3].first { try holds(path, $0) })
        }
        if tpm {
            let text = textIfPresent(tpmFile).trimmingCharacters(in: .whitespacesAndNewlines)
            found.insert(UInt8(text.split(separator: " ").last ?? ""))
        }
        return found.count == 1 ? found.first ?? nil : nil
    }

    /// The internal snapshots of an image, by tag, as qemu-img shows them.
    static func tags(_ image: String) throws -> [String] {
        let r = try Subprocess(qemuImg, ["info", "--output=json", image]).run()
        try #require(r.status == 0, "\(r.stderrText)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdoutText.utf8)) as? [String: Any])
        return ((doc["snapshots"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String }
    }

    /// Which images hold snapshot `name`, by label.
    func holding(_ name: String) throws -> [String] {
        try images.filter { try Self.tags($0.path).contains(name) }.map(\.label)
    }

    /// Every file below the home with its SHA-256 (directories as `dir/`),
    /// the lock file aside: what a refused command must leave as it was.
    func checksums() -> [String: String] {
        var out: [String: String] = [:]
        let e = FileManager.default.enumerator(atPath: home)
        while let rel = e?.nextObject() as? String {
            let path = home + "/" + rel
            if FileSystem.isDirectory(path) { out[rel + "/"] = "dir \(FileSystem.mode(path) ?? 0)"; continue }
            out[rel] = ((try? SHA256.file(path)) ?? "unreadable") + " \(FileSystem.mode(path) ?? 0)"
        }
        return out
    }

    /// Backup directories a finished or repaired command may not leave.
    func backups() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: home)) ?? []).filter { $0.hasPrefix("vmtools-backup.") }
    }
}

extension CLI.Result {
    /// stderr's lines, without the empty one after the last newline.
    var errLines: [String] { err.split(separator: "\n").map(String.init) }
}
