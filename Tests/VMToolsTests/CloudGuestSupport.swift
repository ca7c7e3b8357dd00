import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// The Debian 12 cloud guest (Tests/Guest/build-cloud-guest.sh): built by
/// `Tests/setup.sh test`, cached per machine, found through the link
/// .build/cloud-guest. Boots by direct kernel boot with its root on virtio,
/// DHCP from QEMU's user network, cloud-init from a NoCloud seed.
enum CloudGuest {
    static let directory = Repo.root + "/.build/cloud-guest"
    static let tools = ["qemu-system-x86_64", "qemu-img", "xorriso", "ssh", "ssh-keygen", "ss"]

    static var image: String { directory + "/root.qcow2" }
    static var kernel: String { directory + "/vmlinuz" }
    static var initrd: String { directory + "/initrd.img" }
    /// Debian's generic kernel of the same image: it has 9p, which the cloud
    /// kernel leaves out.
    static var genericKernel: String { directory + "/vmlinuz-generic" }
    static var genericInitrd: String { directory + "/initrd-generic.img" }
    /// `root=/dev/vda console=ttyS0`, as the builder wrote it.
    static var cmdline: String {
        textIfPresent(directory + "/cmdline").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static var isBuilt: Bool {
        [image, kernel, initrd, genericKernel, genericInitrd, directory + "/cmdline"].allSatisfy { FileManager.default.fileExists(atPath: $0) }
    }

    /// The guest's directory, built if missing (which takes minutes: setup.sh
    /// builds it before the tests). Fails the test when it cannot be built.
    static func build() -> String? {
        for tool in tools where requireTool(tool) == nil { return nil }
        if isBuilt { return directory }
        do {
            let r = try Subprocess("/bin/bash", [Repo.root + "/Tests/Guest/build-cloud-guest.sh", directory]).run()
            guard r.status == 0, isBuilt else {
                Issue.record("building the cloud guest failed: \(r.stderrText)")
                return nil
            }
        } catch {
            Issue.record("cannot run the cloud guest builder: \(error)")
            return nil
        }
        return directory
    }

    /// Listening TCP sockets, from `ss -ltnH`: local address:port.
    static func listeningTCP() throws -> [String] {
        guard let ss = requireTool("ss") else { return [] }
        return try Subprocess(ss, ["-ltnH"]).run().stdoutText.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            return f.count >= 4 ? String(f[3]) : nil
        }
    }

    /// QEMU arguments for direct kernel boot of the guest, its root disk on
    /// virtio (/dev/vda).
    static func kernelBoot(root disk: String, format: String = "qcow2", snapshot: Bool) -> [String] {
        ["-kernel", kernel, "-initrd", initrd, "-append", cmdline,
         "-drive", "file=\(disk),format=\(format),if=virtio" + (snapshot ? ",snapshot=on" : "")]
    }
}

extension Trait where Self == ConditionTrait {
    /// The cloud guest and the tools to boot and reach it. Outside CI a test
    /// is skipped when the guest was not built (it takes minutes); in CI it
    /// runs and fails when the guest or a tool is missing.
    static var requiresCloudGuest: Self {
        let missing = Tools.missing(CloudGuest.tools) + (CloudGuest.isBuilt ? [] : ["the cloud guest"])
        return .enabled(if: missing.isEmpty || Tools.ci,
                        Comment(rawValue: "needs \(missing.joined(separator: ", ")) (bash Tests/setup.sh test builds the cloud guest into .build/cloud-guest)"))
    }
}

/// A NoCloud seed made by hand (not by vmtools): an ISO 9660 volume labelled
/// `cidata` with Joliet and Rock Ridge, holding meta-data, user-data and
/// network-config. The reference the seed vmtools builds is compared with.
enum HandSeed {
    static func make(in dir: String, hostname: String, instanceID: String, user: String = "tester",
                     publicKey: String, mac: String, extraUserData: String = "") throws -> String {
        let files = dir + "/seed"
        try FileManager.default.createDirectory(atPath: files, withIntermediateDirectories: true)
        let metaData = "instance-id: \(instanceID)\nlocal-hostname: \(hostname)\n"
        let userData = """
            #cloud-config
            users:
              - name: \(user)
                ssh_authorized_keys: [\"\(publicKey.trimmingCharacters(in: .whitespacesAndNewlines))\"]
                sudo: ALL=(ALL) NOPASSWD:ALL
                shell: /bin/bash
                lock_passwd: true
            ssh_pwauth: false

            """ + extraUserData
        // Matched by MAC with set-name: Debian's ifupdown renderer needs the name.
        let networkConfig = """
            version: 2
            ethernets:
              nic0:
                match:
                  macaddress: "\(mac)"
                set-name: eth0
                dhcp4: true

            """
        for (name, text) in [("meta-data", metaData), ("user-data", userData), ("network-config", networkConfig)] {
            try Data(text.utf8).write(to: URL(fileURLWithPath: files + "/" + name))
        }
        let iso = dir + "/seed.iso"
        let r = try Subprocess("/usr/bin/xorriso", ["-as", "mkisofs", "-quiet", "-o", iso, "-V", "cidata", "-J", "-R", files]).run()
        guard r.status == 0 else { throw VMToolsError(.failure, iso, "xorriso failed: \(r.stderrText)") }
        return iso
    }
}

/// A throwaway ed25519 key pair in a scratch directory.
struct TestSSHKey {
    let privateKey: String
    var publicKeyPath: String { privateKey + ".pub" }
    var publicKey: String { textIfPresent(publicKeyPath) }

    init(in dir: String) throws {
        privateKey = dir + "/id_ed25519"
        let r = try Subprocess("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "vmtools-test", "-f", privateKey]).run()
        guard r.status == 0 else { throw VMToolsError(.failure, privateKey, "ssh-keygen failed: \(r.stderrText)") }
    }
}

/// ssh to a guest through a forwarded port on 127.0.0.1: never asks (BatchMode),
/// trusts the first host key into its own known_hosts file.
struct GuestSSH {
    let key: TestSSHKey
    let port: Int
    let user: String
    let knownHosts: String

    func arguments(_ command: [String]) -> [String] {
        ["-i", key.privateKey, "-p", String(port),
         "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "IdentitiesOnly=yes",
         "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=\(knownHosts)", "-o", "LogLevel=ERROR",
         "\(user)@127.0.0.1", "--"] + command
    }

    /// Runs `command` in the guest, killed after `seconds`.
    func run(_ command: [String], seconds: Int = 60) throws -> Subprocess.Result {
        try Subprocess("/usr/bin/timeout", [String(seconds), "/usr/bin/ssh"] + arguments(command)).run()
    }

    /// Runs `command`, again while ssh itself fails (status 255) until
    /// `seconds` pass: on first boot cloud-init restarts sshd after the first
    /// logins already work (it rewrites sshd_config for `ssh_pwauth`).
    func runRetrying(_ command: [String], seconds: Double) throws -> Subprocess.Result {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let attempt = Date()
            let r = try run(command, seconds: max(1, Int(deadline.timeIntervalSinceNow)))
            if r.status != 255 || Date() >= deadline { return r }
            // Pacing between attempts, not synchronisation: the loop's condition is ssh's status.
            let rest = 1 - Date().timeIntervalSince(attempt)
            if rest > 0 { usleep(UInt32(rest * 1_000_000)) }
        }
    }

    /// Polls until a login with the key works; one attempt a second (each
    /// spawns ssh, and the guest is busy booting on shared cores).
    func waitUntilReady(seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let attempt = Date()
            if let r = try? run(["true"], seconds: 15), r.status == 0 { return true }
            // Pacing between attempts, not synchronisation: the loop's condition is the login.
            let rest = 1 - Date().timeIntervalSince(attempt)
            if rest > 0 { usleep(UInt32(rest * 1_000_000)) }
        }
        return false
    }
}

/// QMP `human-monitor-command`, which QMPClient does not send (it takes
/// arguments): what vmtools reads forwards back with.
enum QMPHuman {
    static func execute(socket path: String, _ commandLine: String, timeout: Double = 10) throws -> String {
        let socket = try UnixSocket(path: path)
        _ = try socket.read(until: "\n", timeout: timeout)
        try socket.send(#"{"execute":"qmp_capabilities"}"# + "\n")
        _ = try reply(socket, timeout)
        let request = JSON.object([("execute", .string("human-monitor-command")),
                                   ("arguments", .object([("command-line", .string(commandLine))]))])
        try socket.send(request.serialized(pretty: false) + "\n")
        return try reply(socket, timeout).stringValue ?? ""
    }

    private static func reply(_ socket: UnixSocket, _ timeout: Double) throws -> JSON {
        while true {
            guard let r = try? JSON.parse(try socket.read(until: "\n", timeout: timeout)) else { continue }
            if let value = r["return"] { return value }
            if let e = r["error"] { throw VMToolsError(.failure, nil, "QEMU refused: \(e["desc"]?.stringValue ?? "error")") }
        }
    }

    /// The host port QEMU bound for a forward to `guestPort`, from `info usernet`:
    ///   TCP[HOST_FORWARD]  13   127.0.0.1 36835   10.0.2.15    22   0   0
    static func forwardedPort(socket path: String, guestPort: Int) throws -> Int? {
        // HMP answers with \r\n, one Character in Swift: split on newlines, not "\n".
        for line in try execute(socket: path, "info usernet").split(whereSeparator: \.isNewline) where line.contains("HOST_FORWARD") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            if f.count >= 7, Int(f[5]) == guestPort { return Int(f[3]) }
        }
        return nil
    }
}
