import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// The test guest (Tests/Guest): built once from Debian packages, cached in
/// .build/guest. Missing tools fail in CI and skip elsewhere, saying why.
enum Guest {
    static let directory = Repo.root + "/.build/guest"

    static func build() -> String? {
        guard requireTool("qemu-system-x86_64") != nil, requireTool("xorriso") != nil else { return nil }
        do {
            let r = try Subprocess("/bin/bash", [Repo.root + "/Tests/Guest/build-guest.sh", directory]).run()
            guard r.status == 0 else {
                Issue.record("building the test guest failed: \(r.stderrText)")
                return nil
            }
        } catch {
            Issue.record("cannot run the guest builder: \(error)")
            return nil
        }
        return directory
    }

    static var iso: String { directory + "/guest.iso" }
    static var qcow2: String { directory + "/guest.qcow2" }
    static var ova: String { directory + "/guest.ova" }
    /// A GPT disk whose only partition is an ESP holding an unsigned unified
    /// kernel image as EFI/BOOT/BOOTX64.EFI, without BIOS boot code.
    static var uefiDisk: String { directory + "/guest-uefi.qcow2" }
}

/// A QEMU started directly by a test (not through vmup): checks the fixture
/// itself. Stopped by pid in `deinit` if a test failed half-way.
final class RawGuest {
    let dir: String
    let pidFile: String
    let serial: String
    let monitor: String

    init(in dir: String, _ extra: [String], memory: String = "128") throws {
        self.dir = dir
        pidFile = dir + "/raw.pid"
        serial = dir + "/serial.log"
        monitor = dir + "/raw.mon"
        let args = ["-accel", "tcg", "-m", memory, "-display", "none", "-nodefaults", "-no-reboot",
                    "-serial", "file:" + serial, "-monitor", "unix:\(monitor),server=on,wait=off",
                    "-daemonize", "-pidfile", pidFile] + extra
        let r = try Subprocess("/usr/bin/qemu-system-x86_64", args).run()
        guard r.status == 0 else { throw VMToolsError(.failure, nil, "qemu failed: \(r.stderrText)") }
    }

    var log: String { textIfPresent(serial) }

    func waitFor(_ marker: String, seconds: Double = 90) -> Bool {
        waitUntil(seconds) { log.contains(marker) }
    }

    /// ACPI power button, repeated until the guest reacts (a press before its
    /// driver is loaded is lost), then wait for QEMU to remove its pid file.
    func powerOff(seconds: Double = 60) throws -> Bool {
        let m = try HumanMonitor(path: monitor)
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline, !log.contains("POWEROFF") {
            _ = try? m.execute("system_powerdown")
            _ = waitUntil(1) { log.contains("POWEROFF") }
        }
        return waitUntil(max(1, deadline.timeIntervalSinceNow)) { !FileManager.default.fileExists(atPath: pidFile) }
    }

    /// QEMU's pid, from its pid file; nil once it has removed the file.
    var pid: Int32? {
        (try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Killed and waited for, so the next test sees no leftover QEMU.
    deinit {
        if let pid {
            kill(pid, SIGKILL)
            _ = waitUntil(10) { QemuProcess.read(pid: pid) == nil }
        }
    }
}
