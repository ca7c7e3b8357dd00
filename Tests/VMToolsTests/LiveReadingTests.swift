import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsCommands

/// The per-reading costs vmps -w pays for every VM (Benchmarks/README, Rates).
@Suite struct LiveReadingTests {
    @Test func statFieldsAreParsedPastTheCommandName() throws {
        let fields = try #require(QemuProcess.statFields(pid: getpid()))
        // Field 4 is the parent's pid, field 5 the process group.
        #expect(fields.count > 21 && Int32(fields[1]) == getppid() && Int32(fields[2]) == getpgrp(), "\(fields.prefix(6))")
    }

    @Test func substringSearchOnBytes() {
        #expect("user,hostfwd=tcp::2222-:22".containsBytes("hostfwd="))
        #expect(!"user,hostfw".containsBytes("hostfwd="))
        #expect("if=pflash".containsBytes("if=pflash") && "".containsBytes("") && !"".containsBytes("x"))
        #expect("äé if=pflash".containsBytes("if=pflash"))
    }

    @Test(.requires("qemu-system-x86_64")) func aQemuWithoutABlockDeviceIsNotAskedForDiskCounters() throws {
        _ = try #require(requireTool("qemu-system-x86_64"))
        let s = Scratch()
        try s.mkdir("q")
        let bare = try RawGuest(in: s.url("q"), ["-S", "-machine", "none", "-qmp", "unix:\(s.url("q/qmp.sock")),server=on,wait=off"], memory: "16")
        try s.mkdir("d")
        let disk = try RawGuest(in: s.url("d"), ["-S", "-machine", "none", "-qmp", "unix:\(s.url("d/qmp.sock")),server=on,wait=off",
                                                 "-drive", "driver=null-co,if=none,id=d0"], memory: "16")
        defer { withExtendedLifetime((bare, disk)) {} }
        let (b, d) = (try #require(bare.pid), try #require(disk.pid))
        _ = waitUntil(10) { FileManager.default.fileExists(atPath: s.url("q/qmp.sock")) && FileManager.default.fileExists(atPath: s.url("d/qmp.sock")) }
        let bp = try #require(QemuProcess.read(pid: b)), dp = try #require(QemuProcess.read(pid: d))
        #expect(!bp.hasBlockDevices && dp.hasBlockDevices)
        // The one with a drive answers over QMP (zero bytes so far); the other is not asked.
        #expect(dp.counters(home: nil, disk: true, net: false).diskWrite == 0)
        #expect(bp.counters(home: nil, disk: true, net: false).diskWrite == nil)
    }
}
