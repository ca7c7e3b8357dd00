import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// The cloud guest itself, started by hand with raw QEMU (no vmtools): with a
/// hand-made NoCloud seed it takes its hostname from meta-data, cloud-init
/// finishes, and sshd accepts the seeded key through a forward whose port the
/// kernel chose and QMP reports. The reference vmtools' cloud-init support
/// is measured against (Benchmarks/cloud.sh).
@Suite(.serialized) struct CloudGuestFixtureTests {
    @Test(.requiresCloudGuest, .timeLimit(.minutes(10)))
    func bootsWithAHandMadeSeedAndAcceptsTheSeededKey() throws {
        guard CloudGuest.build() != nil else { return }
        let s = Scratch()
        let key = try TestSSHKey(in: s.path)
        let mac = "52:54:00:c1:0d:01"
        let seed = try HandSeed.make(in: s.path, hostname: "smoke-guest", instanceID: "iid-smoke-\(getpid())",
                                     publicKey: key.publicKey, mac: mac,
                                     extraUserData: "runcmd:\n  - [sh, -c, 'echo seeded > /run/vmtools-marker']\n")
        let qmp = s.url("qmp.sock")
        let started = Date()
        // -snapshot on the root disk: the cached image stays pristine.
        let guest = try RawGuest(in: s.path, CloudGuest.kernelBoot(root: CloudGuest.image, snapshot: true) + [
            "-smp", "2", "-qmp", "unix:\(qmp),server=on,wait=off",
            "-drive", "file=\(seed),format=raw,if=virtio,read-only=on",
            "-nic", "user,model=virtio-net-pci,mac=\(mac),hostfwd=tcp:127.0.0.1:0-:22",
        ], memory: "1024")
        let port = try #require(try QMPHuman.forwardedPort(socket: qmp, guestPort: 22), "no forward to port 22 in info usernet")
        #expect(port > 0)

        let ssh = GuestSSH(key: key, port: port, user: "tester", knownHosts: s.url("known_hosts"))
        let ready = ssh.waitUntilReady(seconds: 240)
        let sshSeconds = Date().timeIntervalSince(started)
        try #require(ready, "no SSH login within 240 s; serial console:\n\(guest.log.suffix(3000))")

        let hostname = try ssh.runRetrying(["hostname"], seconds: 60)
        #expect(hostname.status == 0)
        #expect(hostname.stdoutText == "smoke-guest\n")
        // sshd may restart once while cloud-init finishes (see runRetrying).
        let wait = try ssh.runRetrying(["cloud-init", "status", "--wait"], seconds: 180)
        #expect(wait.stdoutText.contains("status: done"), "\(wait.stdoutText)\(wait.stderrText)")
        let status = try ssh.run(["cloud-init", "status"])
        let long = status.stdoutText == "status: done\n" ? "" : (try? ssh.run(["sh", "-c", "cloud-init status --long; grep -E 'WARNING|ERROR' /var/log/cloud-init.log"]))?.stdoutText ?? ""
        #expect(status.stdoutText == "status: done\n", "\(status.stdoutText)\(status.stderrText)\(long)")
        let doneSeconds = Date().timeIntervalSince(started)
        #expect(try ssh.run(["cat", "/run/vmtools-marker"]).stdoutText == "seeded\n")
        // The NIC was renamed as network-config says, and DHCP gave it QEMU's address.
        #expect(try ssh.run(["ip", "-4", "-o", "addr", "show", "eth0"]).stdoutText.contains("10.0.2.15/24"))
        // The root is the virtio disk, read-write; the seed was read from the cidata volume.
        #expect(try ssh.run(["findmnt", "-n", "-o", "SOURCE,OPTIONS", "/"]).stdoutText.hasPrefix("/dev/vda rw"))
        #expect(try ssh.run(["sudo", "-n", "blkid", "-s", "LABEL", "-o", "value", "/dev/vdb"]).stdoutText == "cidata\n")
        // Passwordless sudo for the seeded user.
        #expect(try ssh.run(["sudo", "-n", "id", "-u"]).stdoutText == "0\n")
        // The forward listens on loopback only.
        let listening = try CloudGuest.listeningTCP().filter { $0.hasSuffix(":\(port)") }
        #expect(listening == ["127.0.0.1:\(port)"])

        // How long a boot takes here, for the log (Benchmarks/cloud.sh measures it properly).
        FileHandle.standardError.write(Data("cloud guest: SSH after \(Int(sshSeconds)) s, cloud-init done after \(Int(doneSeconds)) s\n".utf8))
        if let pid = guest.pid {
            kill(pid, SIGKILL)
            #expect(waitUntil(10) { QemuProcess.read(pid: pid) == nil })
        }
    }
}
