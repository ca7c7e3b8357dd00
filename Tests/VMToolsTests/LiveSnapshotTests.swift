import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// vmsnap on a running VM (vmsnap(1), LIVE SNAPSHOTS and RESUMING): the
/// busybox guest's `count` prints `VMTOOLS-GUEST: COUNT n` every half
/// second from a counter in RAM, so the RAM a snapshot saved shows in the
/// numbers the guest prints after a revert. Every VM started is stopped,
/// even when a test fails.
@Suite(.serialized) struct LiveSnapshotTests {
    /// The counter values the guest printed, in order, from byte `offset`
    /// of the serial log on.
    static func counts(_ lab: BootLab, _ home: String, from offset: Int = 0) -> [Int] {
        let log = Array(lab.serial(home).utf8)
        guard offset <= log.count else { return [] }
        // The guest's console ends its lines with CR LF: one Character to Swift.
        return String(decoding: log[offset...], as: UTF8.self).split(whereSeparator: \.isNewline).compactMap { line in
            line.hasPrefix("VMTOOLS-GUEST: COUNT ") ? Int(line.dropFirst("VMTOOLS-GUEST: COUNT ".count)) : nil
        }
    }

    static func serialSize(_ lab: BootLab, _ home: String) -> Int { lab.serial(home).utf8.count }

    /// Stops the VM whatever happened (vmdown, then its pid).
    static func stop(_ lab: BootLab, _ home: String) {
        guard let pid = lab.pid(home), QemuProcess.read(pid: pid) != nil else { return }
        _ = try? lab.down(home)
        if QemuProcess.read(pid: pid) != nil {
            kill(pid, SIGKILL)
            _ = waitUntil(10) { QemuProcess.read(pid: pid) == nil }
        }
    }

    @Test(.requiresGuest) func aLiveSnapshotRevertsTheRunningGuestAndResumesAtTheNextStart() throws {
        guard let lab = try BootLab.guest() else { return }
        let home = try lab.makeVM("live")
        defer { Self.stop(lab, home) }
        let up = try lab.up(home, command: "count")
        try #require(up.status == 0, "\(up.err)")
        try #require(waitUntil(120) { (Self.counts(lab, home).last ?? -1) >= 4 }, "\(lab.serial(home))")

        let save = try lab.cli.run("vmsnap", [home, "at4"])
        // The last value printed before the save returned: the RAM saved holds it or the next.
        let n = try #require(Self.counts(lab, home).last)
        try #require(save.status == 0, "\(save.err)")
        #expect(save.err.contains("live"), "\(save.err)")

        try #require(waitUntil(60) { (Self.counts(lab, home).last ?? -1) >= n + 6 }, "\(lab.serial(home))")
        let offset = Self.serialSize(lab, home)
        let revert = try lab.cli.run("vmsnap", ["-r", home, "at4"])
        try #require(revert.status == 0, "\(revert.err)")
        try #require(waitUntil(30) { !Self.counts(lab, home, from: offset).isEmpty }, "\(lab.serial(home))")
        // What the guest printed after the revert returned: back to where the save was.
        let after = try #require(Self.counts(lab, home, from: offset).first)
        #expect(after >= n - 1 && after <= n + 1, "saved at \(n), resumed at \(after): \(lab.serial(home))")

        let list = try lab.cli.run("vmsnap", ["-l", "-j", home])
        #expect(list.status == 0, "\(list.err)")
        let entries = try lab.json(list)
        #expect(entries.count == 1 && entries.first?["name"] as? String == "at4", "\(list.out)")
        #expect(entries.first?["live"] as? Bool == true, "\(list.out)")
        #expect((entries.first?["vmstate_bytes"] as? Int ?? 0) > 0, "\(list.out)")
        #expect(entries.first?["images"] as? [String] == ["hdd2"], "\(list.out)")

        // Stopped: the revert puts the disk back and leaves the marker for the next start.
        try #require(try lab.down(home).status == 0)
        let stopped = try lab.cli.run("vmsnap", ["-r", home, "at4"])
        try #require(stopped.status == 0, "\(stopped.err)")
        let marker = home + "/snapshots/.resume"
        #expect(textIfPresent(marker) == "at4\n")
        let dry = try lab.cli.run("vmup", ["-n", home])
        #expect(dry.err.contains("would resume the RAM and devices saved in snapshot at4"), "\(dry.err)")
        #expect(FileManager.default.fileExists(atPath: marker), "vmup -n changes nothing")

        // The same machine as at the save (the guest's command is a fw_cfg device's file).
        let resumed = try lab.up(home, command: "count")
        try #require(resumed.status == 0, "\(resumed.err)")
        #expect(resumed.err.contains("resuming the RAM and devices saved in snapshot at4"), "\(resumed.err)")
        #expect(!FileManager.default.fileExists(atPath: marker), "the start removes the marker")
        try #require(waitUntil(30) { !Self.counts(lab, home).isEmpty }, "\(lab.serial(home))")
        let first = try #require(Self.counts(lab, home).first)
        #expect(first >= n - 1 && first <= n + 1, "saved at \(n), resumed at \(first): \(lab.serial(home))")
        #expect(!lab.serial(home).contains("VMTOOLS-GUEST: kernel"), "the guest booted instead of resuming: \(lab.serial(home))")

        // A live delete: the tag leaves the running VM's disk.
        let delete = try lab.cli.run("vmsnap", ["-d", home, "at4"])
        #expect(delete.status == 0, "\(delete.err)")
        #expect(try lab.json(try lab.cli.run("vmsnap", ["-l", "-j", home])).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: home + "/snapshots/at4"))
        #expect(try lab.down(home).status == 0)
        #expect(try SnapshotVM.tags(home + "/data.qcow2").isEmpty)
    }

    @Test(.requiresGuest) func aVMInSnapshotModeRefusesALiveSnapshot() throws {
        guard let lab = try BootLab.guest() else { return }
        let home = try lab.makeVM("scratch")
        defer { Self.stop(lab, home) }
        let up = try lab.up(home, ["-s"])
        try #require(up.status == 0, "\(up.err)")
        let r = try lab.cli.run("vmsnap", [home, "try"])
        #expect(r.status == 1)
        #expect(r.errLines == ["vmsnap: ERROR: \(home): cannot snapshot \(home)/data.qcow2 live: QEMU does not have it open for writing (the VM runs with its disks in snapshot mode (-s) or read-only (-r))"],
                "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: home + "/snapshots/try"))
        #expect(try lab.down(home).status == 0)
        #expect(try SnapshotVM.tags(home + "/data.qcow2").isEmpty)
    }

    /// The marker is read warily and goes after one start attempt, even a
    /// failed one (QEMU refuses a snapshot its disks do not hold).
    @Test(.requiresGuest) func aMarkerIsReadWarilyAndGoesAfterOneStartAttempt() throws {
        guard let lab = try BootLab.guest() else { return }
        let home = try lab.makeVM("marked")
        defer { Self.stop(lab, home) }
        let marker = home + "/snapshots/.resume"
        try FileManager.default.createDirectory(atPath: home + "/snapshots", withIntermediateDirectories: true)

        // Planted: a link, or no snapshot name; vmup -n says it would drop it, and resumes nothing.
        try FileManager.default.createSymbolicLink(atPath: marker, withDestinationPath: home + "/vm.settings")
        let linked = try lab.cli.run("vmup", ["-nv", home])
        #expect(linked.status == 0, "\(linked.err)")
        #expect(linked.err.contains("would ignore and remove \(marker): refusing a symbolic link"), "\(linked.err)")
        #expect(!linked.out.contains("-loadvm"), "\(linked.out)")
        try FileManager.default.removeItem(atPath: marker)
        try lab.s.write("marked/snapshots/.resume", "../../etc\n")
        let bad = try lab.cli.run("vmup", ["-nv", home])
        #expect(bad.err.contains("would ignore and remove \(marker)"), "\(bad.err)")
        #expect(!bad.out.contains("-loadvm"), "\(bad.out)")

        // A snapshot the disk does not hold: QEMU refuses to start, and the marker is gone all the same.
        try lab.s.write("marked/snapshots/.resume", "gone\n")
        let dry = try lab.cli.run("vmup", ["-nv", home])
        #expect(dry.out.contains(" -loadvm gone"), "\(dry.out)")
        // Disks in snapshot mode have nothing to load from: that start boots, the marker stays.
        let scratch = try lab.cli.run("vmup", ["-nv", "-s", home])
        #expect(scratch.err.contains("not resuming snapshot gone with the disks in snapshot mode"), "\(scratch.err)")
        #expect(!scratch.out.contains("-loadvm"), "\(scratch.out)")
        let r = try lab.up(home)
        #expect(r.status == 1)
        #expect(r.err.contains("the disks are at snapshot gone, and the next vmup boots them afresh"), "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: marker))
        #expect(lab.pid(home).flatMap(QemuProcess.read(pid:)) == nil)
    }
}
