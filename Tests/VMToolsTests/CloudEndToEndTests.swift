import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// From a cloud image to an SSH session, through vmtools alone (vm.settings(5)
/// CLOUD-INIT; vmup(1) -w; vmfork(1)): the Debian 12 cloud guest made into a
/// VM by `vmcreate`, started with `vmup -w`, reached with `ssh -F
/// HOME/ssh.config NAME`; then forked twice, both forks running at once, each
/// a new instance reachable by its own ssh.config, one with a grown disk, one
/// serving a web page through a second forward.
@Suite(.serialized) struct CloudEndToEndTests {
    @Test(.requiresCloudGuest, .timeLimit(.minutes(20)))
    func aCloudImageBecomesAnSSHSessionAndItsForksAreNewInstances() throws {
        guard let lab = try BootLab.cloud() else { return }
        let web = lab.vms + "/web"
        // An overlay keeps the cached image pristine; "cloud" in its name
        // would turn cloud-init on by itself, the user-data file does too.
        let base = lab.s.url("base.qcow2")
        let img = try Subprocess("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", "-b", CloudGuest.image, "-F", "qcow2", base]).run()
        try #require(img.status == 0, "\(img.stderrText)")
        let userData = try lab.s.write("user-data", """
            #cloud-config
            runcmd:
              - [sh, -c, 'echo from-user-data > /var/tmp/vmtools-marker']
            """)
        let create = try lab.cli.run("vmcreate", ["-n", "-y",
            "-o", "vm_ram_size=1G", "-o", "vm_cpu_count=2",
            "-o", "vm_storage_hdd_interface=virtio", "-o", "vm_storage_hdd1_enable=yes", "-o", "vm_storage_hdd1_backend=\(base)",
            "-o", "vm_networking_iface1_enable=yes", "-o", "vm_networking_iface1_device=virtio-net-pci",
            "-o", "vm_boot_kernel=\(CloudGuest.kernel)", "-o", "vm_boot_initrd=\(CloudGuest.initrd)",
            "-o", "vm_boot_append=\(CloudGuest.cmdline)", "-o", "vm_cloudinit_userdata=\(userData)", web])
        try #require(create.status == 0, "\(create.err)")

        // vmup -w returns once sshd answers through the forward the kernel chose.
        let up = try lab.cli.run("vmup", ["-w", web])
        try #require(up.status == 0, "\(up.err)\n\(textIfPresent(web + "/serial.log").suffix(3000))")
        #expect(up.err.contains("ssh -F \(web)/ssh.config -- web"), "\(up.err)")
        #expect(up.err.contains("id_ed25519.pub"), "key discovery names the key: \(up.err)")
        let config = textIfPresent(web + "/ssh.config")
        #expect(config.contains("IdentityFile \(lab.key)"), "\(config)")

        let hostname = try lab.ssh(web, "web", "hostname")
        #expect(hostname.status == 0 && hostname.stdoutText == "web\n", "\(hostname.stdoutText)\(hostname.stderrText)")
        let status = try lab.ssh(web, "web", "cloud-init status --wait", seconds: 240)
        #expect(status.stdoutText.contains("status: done"), "\(status.stdoutText)\(status.stderrText)")
        #expect(try lab.ssh(web, "web", "cat /var/tmp/vmtools-marker").stdoutText == "from-user-data\n")
        let webInstance = try lab.ssh(web, "web", "cat /var/lib/cloud/data/instance-id").stdoutText
        #expect(webInstance.hasPrefix("iid-"))

        // Stopped, then forked twice; one fork's disk grows, the other gets a second forward.
        let down = try lab.cli.run("vmdown", [web])
        try #require(down.status == 0, "\(down.err)")
        let fork = try lab.cli.run("vmfork", [web, web + "/f1", web + "/f2"])
        try #require(fork.status == 0, "\(fork.err)")
        try appendSetting(web + "/f1/vm.settings", "vm_storage_hdd1_size=5G")
        try appendSetting(web + "/f2/vm.settings", "vm_networking_iface1_forward=tcp::8000")
        // The parent's disk backs both forks: growing it is refused, naming a fork.
        try appendSetting(web + "/vm.settings", "vm_storage_hdd1_size=6G")
        let grow = try lab.cli.run("vmup", ["-n", web])
        #expect(grow.status != 0 && grow.err.contains("/f1"), "\(grow.err)")

        let names = ["f1", "f2"]
        for n in names {
            let r = try lab.cli.run("vmup", ["-w", web + "/" + n])
            try #require(r.status == 0, "\(n): \(r.err)\n\(textIfPresent(web + "/\(n)/serial.log").suffix(3000))")
        }
        // Both run at once, each a new instance with its own identity.
        var seen: [String: [String]] = [:]
        for n in names {
            let home = web + "/" + n
            let probe = try lab.ssh(home, n,
                "hostname; cat /var/lib/cloud/data/instance-id; cut -d' ' -f2 /etc/ssh/ssh_host_ed25519_key.pub; " +
                "cat /sys/class/net/eth0/address; sudo -n cat /sys/class/dmi/id/product_uuid")
            let lines = probe.stdoutText.split(separator: "\n").map(String.init)
            try #require(lines.count == 5, "\(n): \(probe.stdoutText)\(probe.stderrText)")
            #expect(lines[0] == n)
            let info = try lab.json(try lab.cli.run("vminfo", ["-j", home]))
            let settings = info.first?["settings"] as? [String: [String: Any]]
            #expect(lines[1] == settings?["vm_cloudinit_instanceid"]?["value"] as? String)
            #expect(lines[4].lowercased() == (settings?["vm_uuid"]?["value"] as? String)?.lowercased())
            seen[n] = lines
        }
        for i in 1..<5 {
            #expect(seen["f1"]![i] != seen["f2"]![i], "field \(i) is the same in both forks")
            #expect(seen["f1"]![i] != (i == 1 ? webInstance.trimmingCharacters(in: .whitespacesAndNewlines) : ""))
        }

        // The grown disk, seen by the guest.
        let size = try lab.ssh(web + "/f1", "f1", "lsblk -b -d -n -o SIZE /dev/vda")
        #expect(size.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) == String(5 << 30))
        // cloud-init's resize_rootfs grew the root file system with it (the root is the whole disk).
        let root = try lab.ssh(web + "/f1", "f1", "df -B1 --output=size /")
        let rootBytes = Int(root.stdoutText.split(separator: "\n").last.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? "") ?? 0
        #expect(rootBytes > 4 << 30, "\(root.stdoutText)")

        // A web server in f2, reached from the host through the second forward.
        let serve = try lab.ssh(web + "/f2", "f2",
            "mkdir -p /tmp/www && echo hello-from-f2 > /tmp/www/index.html && " +
            "setsid -f python3 -m http.server 8000 --directory /tmp/www </dev/null >/dev/null 2>&1")
        #expect(serve.status == 0, "\(serve.stderrText)")
        let ps = try lab.json(try lab.cli.run("vmps", ["-j", "-d", web + "/f2"]))
        let forwards = try #require(ps.first?["forwards"] as? [[String: Any]], "\(ps)")
        #expect(forwards.compactMap { $0["guest_port"] as? Int }.sorted() == [22, 8000])
        let webPort = try #require(forwards.first { $0["guest_port"] as? Int == 8000 }?["host_port"] as? Int)
        var page = ""
        #expect(waitUntil(60) { page = ReachTests.httpGet(port: webPort); return page.contains("hello-from-f2") }, "\(page)")

        // Every forward of these VMs listens on loopback only.
        var ports: [Int] = []
        for n in names {
            for f in try lab.json(try lab.cli.run("vmps", ["-j", "-d", web + "/" + n])).first?["forwards"] as? [[String: Any]] ?? [] {
                if let p = f["host_port"] as? Int { ports.append(p) }
            }
        }
        #expect(ports.count == 3)
        let listening = try CloudGuest.listeningTCP()
        for p in ports {
            #expect(listening.filter { $0.hasSuffix(":\(p)") } == ["127.0.0.1:\(p)"], "port \(p): \(listening)")
        }

        for n in names {
            let r = try lab.cli.run("vmdown", [web + "/" + n])
            #expect(r.status == 0, "\(r.err)")
        }
    }

    func appendSetting(_ file: String, _ line: String) throws {
        let h = try #require(FileHandle(forWritingAtPath: file))
        h.seekToEndOfFile()
        h.write(Data((line + "\n").utf8))
        try h.close()
    }

    /// The README's first command for a distribution's cloud image, with
    /// nothing added but the three direct-boot settings this test guest needs
    /// (it has no boot loader): its cloud kernel has no e1000 or IDE-era
    /// driver, so the guest reaches SSH only on the virtio disk (root=/dev/vda)
    /// and virtio NIC the `cloud_image` configure module gives it.
    @Test(.requiresCloudGuest, .timeLimit(.minutes(10)))
    func theReadmesCloudImageCommandGivesAGuestWithANetwork() throws {
        guard let lab = try BootLab.cloud() else { return }
        let vm = lab.vms + "/debian"
        // The README's name, on an overlay so the cached guest stays as built.
        let image = lab.s.url("debian-12-genericcloud-amd64.qcow2")
        let img = try Subprocess("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", "-b", CloudGuest.image, "-F", "qcow2", image]).run()
        try #require(img.status == 0, "\(img.stderrText)")
        let create = try lab.cli.run("vmcreate", ["-n", "-y", "-c", image, "-o", "vm_storage_hdd1_size=10G",
            "-o", "vm_boot_kernel=\(CloudGuest.kernel)", "-o", "vm_boot_initrd=\(CloudGuest.initrd)", "-o", "vm_boot_append=\(CloudGuest.cmdline)", vm])
        try #require(create.status == 0, "\(create.err)")
        let settings = textIfPresent(vm + "/vm.settings")
        #expect(settings.contains("vm_storage_hdd_interface=virtio") && settings.contains("vm_networking_iface1_device=virtio-net-pci"), "\(settings)")

        let up = try lab.cli.run("vmup", ["-w", vm])
        try #require(up.status == 0, "\(up.err)\n\(textIfPresent(vm + "/serial.log").suffix(3000))")
        let hostname = try lab.ssh(vm, "debian", "hostname")
        #expect(hostname.status == 0 && hostname.stdoutText == "debian\n", "\(hostname.stdoutText)\(hostname.stderrText)")
        let down = try lab.cli.run("vmdown", ["-k", vm])
        #expect(down.status == 0, "\(down.err)")
    }
}
