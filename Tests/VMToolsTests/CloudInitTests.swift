import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// cloud-init NoCloud (vm.settings(5), CLOUD-INIT): the seed's plan and
/// argv, its files read back from the ISO, rebuilding only on change,
/// validation, key discovery, identity per clone, the Kickstart volume.
@Suite struct CloudInitTests {
    static let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBnyYJ1reXBVzHtjzVxuZWn/MkAN98lRXitqCML4jq/y ann@host"
    static let tcg = Accelerator(kind: .tcg, reason: "test", fellBack: true)

    /// A plan for a VM home `vm` with these settings (two NICs with fixed MACs), HOME at `home`.
    func plan(_ s: Scratch, _ values: [String: String], name: String = "web") throws -> QemuCommand {
        try s.mkdir("empty-bin")
        if !s.exists("home") { try s.mkdir("home") }
        if !s.exists("vm") { try s.mkdir("vm") }
        var g = try resolver(s).loadGlobal()
        g.settings.set("cfg_qemu_cmdprefix", "/usr/bin/qemu-system-", .commandLine("-o"))
        var settings = g.settings
        let base = ["vm_name": name, "vm_networking_iface1_enable": "yes", "vm_networking_iface1_mac": "52:54:00:AA:00:01",
                    "vm_networking_iface2_enable": "yes", "vm_networking_iface2_mac": "52:54:00:aa:00:02"]
        for (k, v) in base.merging(values, uniquingKeysWith: { $1 }) { settings.set(k, v, .commandLine("-o")) }
        settings.set("vm_home", s.url("vm"), .derived("test"))
        var c = QemuCommand(settings: settings, home: s.url("vm"), global: g, environment: ["PATH": s.url("empty-bin"), "HOME": s.url("home")],
                            accelerator: Self.tcg, dryRun: true)
        try c.build(ModuleRegistry.buildcmdModules(settings, paths: s.paths))
        return c
    }

    /// Carries out `c`'s preparation (seed volumes) with xorriso on PATH.
    func prepare(_ s: Scratch, _ c: QemuCommand) throws {
        var c = c
        c.environment["PATH"] = "/usr/bin:/bin"
        let file = try s.write("console.log", "")
        let stream = OutputStream(fd: open(file, O_WRONLY | O_APPEND))
        var e = LaunchExecutor(c, name: "test", console: Console(command: "test", out: stream, err: stream))
        try e.prepare()
    }

    /// The files of an ISO, extracted with xorriso, and its volume id.
    func readISO(_ s: Scratch, _ iso: String) throws -> (label: String, files: [String: String]) {
        let out = s.url("extract-\(UUID().uuidString)")
        let r = try Subprocess("/usr/bin/xorriso", ["-osirrox", "on", "-indev", iso, "-extract", "/", out]).run()
        try #require(r.status == 0, "\(r.stderrText)")
        var files: [String: String] = [:]
        for f in try FileManager.default.contentsOfDirectory(atPath: out) {
            files[f] = try String(contentsOfFile: out + "/" + f, encoding: .utf8)
        }
        let pvd = try Subprocess("/usr/bin/xorriso", ["-indev", iso, "-pvd_info"]).run()
        let label = pvd.stdoutText.split(separator: "\n").first { $0.hasPrefix("Volume Id") }.map { String($0.split(separator: ":", maxSplits: 1)[1].dropFirst()) } ?? ""
        return (label, files)
    }

    /// An error as printed: its subject, then its message.
    func full(_ e: VMToolsError?) -> String { e.map { ($0.subject.map { $0 + ": " } ?? "") + $0.message } ?? "" }

    @Test func theSeedIsAReadOnlySCSICDROMBesideTheUserSlotsAndTheUUIDIsRecorded() throws {
        let s = Scratch()
        let c = try plan(s, ["vm_cloudinit_sshkey": Self.key, "vm_storage_cdrom1_enable": "yes", "vm_storage_cdrom2_enable": "yes"])
        let argv = c.argv
        let iso = s.url("vm/cidata.iso")
        let at = try #require(argv.firstIndex(of: "file=\(iso),format=raw,if=none,id=vmtools-cidata,readonly=on,media=cdrom"))
        #expect(Array(argv[(at - 1)...(at + 4)]) == ["-drive", "file=\(iso),format=raw,if=none,id=vmtools-cidata,readonly=on,media=cdrom",
                                                  "-device", "virtio-scsi-pci,id=vmtools-seed-scsi",
                                                  "-device", "scsi-cd,drive=vmtools-cidata,bus=vmtools-seed-scsi.0"])
        // The user's two CD-ROM slots stay where they were.
        #expect(argv.contains("if=ide,index=2,media=cdrom,read-only=on") && argv.contains("if=ide,index=3,media=cdrom,read-only=on"))
        let saved = Dictionary(uniqueKeysWithValues: c.plan.settingsToSave.map { ($0.name, $0.value) })
        let uuid = try #require(saved["vm_uuid"])
        #expect(argv.suffix(2) == ["-uuid", uuid])
        #expect(VMSettings.isUUID(uuid) && Array(uuid)[14] == "4")
        #expect(try #require(saved["vm_cloudinit_instanceid"]).wholeMatch(of: /iid-[0-9a-f]{16}/) != nil)
        #expect(c.plan.seedVolumes.map(\.path) == [iso])
        #expect(c.plan.dryRunLines.contains("would write \(iso) (the cidata volume: meta-data, user-data, network-config)"))
        #expect(!FileManager.default.fileExists(atPath: iso), "planning writes nothing")
    }

    @Test func aRecordedUUIDAndInstanceIDAreKept() throws {
        let s = Scratch()
        let uuid = "0f8fad5b-d9cb-469f-a165-70867728950e"
        let c = try plan(s, ["vm_cloudinit_sshkey": Self.key, "vm_uuid": uuid, "vm_cloudinit_instanceid": "iid-1"])
        #expect(c.argv.suffix(2) == ["-uuid", uuid])
        #expect(c.plan.settingsToSave.isEmpty)
        #expect(c.plan.seedVolumes.first?.files.first { $0.name == "meta-data" }?.content == "instance-id: \"iid-1\"\nlocal-hostname: \"web\"\n")
        // vm_uuid alone, cloud-init off: -uuid all the same; a bad one is refused.
        #expect(try plan(Scratch(), ["vm_uuid": uuid, "vm_cloudinit_enable": "no"]).argv.suffix(2) == ["-uuid", uuid])
        let e = expectError { _ = try plan(Scratch(), ["vm_uuid": "nope"]) }
        #expect(full(e).contains("vm_uuid") && full(e).contains("expected a UUID"))
    }

    static let autoCases: [([String: String], Bool)] = [
        ([String: String](), false),
        (["vm_storage_hdd1_enable": "yes", "vm_storage_hdd1_backend": "img/debian-12-genericcloud-amd64.qcow2"], true),
        (["vm_storage_hdd1_enable": "yes", "vm_storage_hdd1_backend": "img/jammy-server-cloudimg-amd64.img"], true),
        (["vm_storage_hdd1_enable": "yes", "vm_storage_hdd1_backend": "cloud/debian.qcow2"], false),
        (["vm_storage_hdd1_enable": "no", "vm_storage_hdd1_backend": "img/Fedora-Cloud-Base.qcow2"], false),
        (["vm_cloudinit_hostname": "www"], true),
        (["vm_cloudinit_enable": "no", "vm_cloudinit_hostname": "www"], false),
        (["vm_cloudinit_enable": "yes"], true),
    ]

    @Test(arguments: autoCases) func autoIsOnForCloudImagesAndAnyCloudInitSetting(values v: [String: String], on: Bool) throws {
        let s = Scratch()
        try s.mkdir("home/.ssh")
        try s.write("home/.ssh/id_rsa.pub", Self.key + "\n")
        var values = v
        if let disk = values["vm_storage_hdd1_backend"] {
            values["vm_storage_hdd1_backend"] = try s.write(disk, "")
        }
        #expect(try VMSettings(plan(s, values).settings).cloudInitEnabled() == on)
        #expect(try plan(s, values).argv.contains("-uuid") == on)
    }

    @Test(.requires("xorriso")) func theSeedHoldsTheUserTheKeysAndDHCPPerNICByMAC() throws {
        guard requireTool("xorriso") != nil else { return }
        let s = Scratch()
        let c = try plan(s, ["vm_cloudinit_sshkey": Self.key, "vm_cloudinit_user": "ann", "vm_cloudinit_instanceid": "iid-7"], name: "Web_Server.1")
        try prepare(s, c)
        let iso = try readISO(s, s.url("vm/cidata.iso"))
        #expect(iso.label == "cidata")
        #expect(iso.files == [
            "meta-data": "instance-id: \"iid-7\"\nlocal-hostname: \"web-server-1\"\n",
            "user-data": """
            #cloud-config
            users:
              - name: "ann"
                shell: /bin/bash
                sudo: "ALL=(ALL) NOPASSWD:ALL"
                lock_passwd: true
                ssh_authorized_keys:
                  - "\(Self.key)"
            ssh_pwauth: false
            disable_root: true

            """,
            "network-config": """
            version: 2
            ethernets:
              eth0:
                match:
                  macaddress: "52:54:00:aa:00:01"
                set-name: eth0
                dhcp4: true
              eth1:
                match:
                  macaddress: "52:54:00:aa:00:02"
                set-name: eth1
                dhcp4: true

            """,
        ])
        #expect(FileSystem.mode(s.url("vm/cidata.iso")).map { $0 & 0o777 } == 0o600)
    }

    @Test(.requires("xorriso")) func theUsersUserDataFollowsOursInAMultipartAndTheirNetworkConfigReplacesOurs() throws {
        guard requireTool("xorriso") != nil else { return }
        let s = Scratch()
        let ud = try s.write("ud.yaml", "#cloud-config\nruncmd:\n  - touch /marker\n")
        let net = try s.write("net.yaml", "version: 2\nethernets: {}\n")
        let c = try plan(s, ["vm_cloudinit_sshkey": Self.key, "vm_cloudinit_userdata": ud, "vm_cloudinit_networkconfig": net])
        try prepare(s, c)
        let files = try readISO(s, s.url("vm/cidata.iso")).files
        let userData = try #require(files["user-data"])
        #expect(userData.hasPrefix("Content-Type: multipart/mixed; boundary="))
        let parts = userData.components(separatedBy: "\n--==vmtools-")
        #expect(parts.count == 4)
        #expect(parts[1].contains("Content-Type: text/cloud-config") && parts[1].contains("ssh_authorized_keys"))
        #expect(parts[2].contains("Merge-Type: list(append)") && parts[2].hasSuffix("\n\n#cloud-config\nruncmd:\n  - touch /marker"))
        #expect(files["network-config"] == "version: 2\nethernets: {}\n")
        let script = try s.write("ud.sh", "#!/bin/sh\necho hi\n")
        let c2 = try plan(Scratch(), ["vm_cloudinit_sshkey": Self.key, "vm_cloudinit_userdata": script])
        #expect(c2.plan.seedVolumes[0].files[1].content.contains("Content-Type: text/x-shellscript; charset=\"utf-8\"\n\n#!/bin/sh\necho hi\n"))
    }

    @Test(.requires("xorriso")) func anUnchangedSeedIsNotRebuiltAChangedOneIs() throws {
        guard requireTool("xorriso") != nil else { return }
        let s = Scratch()
        let values = ["vm_cloudinit_sshkey": Self.key, "vm_cloudinit_instanceid": "iid-1"]
        try prepare(s, try plan(s, values))
        let iso = s.url("vm/cidata.iso")
        let before = try FileManager.default.attributesOfItem(atPath: iso)
        let again = try plan(s, values)
        #expect(again.plan.seedVolumes.isEmpty)
        try prepare(s, again)
        let after = try FileManager.default.attributesOfItem(atPath: iso)
        #expect(after[.systemFileNumber] as? Int == before[.systemFileNumber] as? Int)
        #expect(after[.modificationDate] as? Date == before[.modificationDate] as? Date)
        let changed = try plan(s, values.merging(["vm_cloudinit_hostname": "other"]) { $1 })
        #expect(changed.plan.seedVolumes.count == 1)
        try prepare(s, changed)
        #expect(try FileManager.default.attributesOfItem(atPath: iso)[.systemFileNumber] as? Int != before[.systemFileNumber] as? Int)
        #expect(try readISO(s, iso).files["meta-data"]?.contains("local-hostname: \"other\"") == true)
        #expect(try plan(s, values.merging(["vm_cloudinit_hostname": "other"]) { $1 }).plan.seedVolumes.isEmpty)
    }

    @Test(.requires("xorriso")) func aStartThatFailsRemovesANewSeedButKeepsARebuiltOne() throws {
        guard requireTool("xorriso") != nil else { return }
        let s = Scratch()
        func failedStart(_ values: [String: String]) throws {
            var c = try plan(s, values)
            c.plan.argv[0] = s.url("no-such-qemu")
            c.environment["PATH"] = "/usr/bin:/bin"
            let file = try s.write("console.log", "")
            let stream = OutputStream(fd: open(file, O_WRONLY | O_APPEND))
            var e = LaunchExecutor(c, name: "test", console: Console(command: "test", out: stream, err: stream))
            try e.prepare()
            #expect(FileManager.default.fileExists(atPath: s.url("vm/cidata.iso")), "built before QEMU starts")
            #expect(throws: VMToolsError.self) { try e.start() }
        }
        let values = ["vm_cloudinit_sshkey": Self.key, "vm_cloudinit_instanceid": "iid-1"]
        try failedStart(values)
        #expect(!FileManager.default.fileExists(atPath: s.url("vm/cidata.iso")))
        try prepare(s, try plan(s, values))
        try failedStart(values.merging(["vm_cloudinit_hostname": "other"]) { $1 })
        #expect(try readISO(s, s.url("vm/cidata.iso")).files["meta-data"]?.contains("\"other\"") == true)
    }

    @Test func badInputsAreRefusedNamingTheFileOrSetting() throws {
        let s = Scratch()
        let ud = try s.write("ud.txt", "users: []\n")
        var e = expectError { _ = try plan(s, ["vm_cloudinit_sshkey": Self.key, "vm_cloudinit_userdata": ud]) }
        #expect(full(e) == "\(ud): not cloud-init user-data (vm_cloudinit_userdata): the first line must be #cloud-config or a #! script, or the file a MIME multipart")
        e = expectError { _ = try plan(s, ["vm_cloudinit_sshkey": Self.key, "vm_cloudinit_networkconfig": s.url("missing.yaml")]) }
        #expect(full(e).hasPrefix("vm_cloudinit_networkconfig: '\(s.url("missing.yaml"))' (from command line"))
        #expect(full(e).hasSuffix("no readable file at \(s.url("missing.yaml"))"))
        let notKey = try s.write("key.pub", "-----BEGIN OPENSSH PRIVATE KEY-----\n")
        e = expectError { _ = try plan(s, ["vm_cloudinit_sshkey": notKey]) }
        #expect(full(e).contains("\(notKey):1: not an OpenSSH public key"))
        e = expectError { _ = try plan(s, ["vm_cloudinit_hostname": "bad_name"]) }
        #expect(full(e).contains("vm_cloudinit_hostname: 'bad_name'"))
        e = expectError { _ = try plan(s, ["vm_cloudinit_sshkey": Self.key, "vm_cloudinit_user": "Ann"]) }
        #expect(full(e).contains("vm_cloudinit_user: 'Ann'"))
        e = expectError { _ = try plan(s, ["vm_cloudinit_enable": "maybe"]) }
        #expect(full(e).contains("expected auto, yes or no"))
        // No key anywhere (HOME has no .ssh) and no user-data: say what to set.
        e = expectError { _ = try plan(s, ["vm_cloudinit_enable": "yes"]) }
        #expect(full(e).contains("no SSH key for the cloud-init user") && full(e).contains("set vm_cloudinit_sshkey"))
    }

    @Test func withoutAKeySettingTheFirstOfEd25519EcdsaRsaIsUsedAndNamed() throws {
        let s = Scratch()
        try s.mkdir("home/.ssh")
        try s.write("home/.ssh/id_rsa.pub", "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAACQAREREREREREQ== rsa@host\n")
        try s.write("home/.ssh/id_ecdsa.pub", "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAAAFBGFiY2Q= ecdsa@host\n")
        try s.write("home/.ssh/id_ecdsa", "private")
        let c = try plan(s, ["vm_cloudinit_enable": "yes"])
        #expect(c.notices.contains("cloud-init: the SSH key \(s.url("home/.ssh/id_ecdsa.pub")) (vm_cloudinit_sshkey is empty)"))
        #expect(c.plan.seedVolumes[0].files[1].content.contains("- \"ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAAAFBGFiY2Q= ecdsa@host\""))
        #expect(!c.plan.seedVolumes[0].files[1].content.contains("ssh-rsa"))
        let keys = try VMSettings(c.settings).cloudInitKeys(home: nil, environment: ["HOME": s.url("home")])
        #expect(keys?.identityFile == s.url("home/.ssh/id_ecdsa") && keys?.discovered == true)
        try s.write("home/.ssh/id_ed25519.pub", Self.key + "\n")
        #expect(try plan(s, ["vm_cloudinit_enable": "yes"]).notices.contains("cloud-init: the SSH key \(s.url("home/.ssh/id_ed25519.pub")) (vm_cloudinit_sshkey is empty)"))
    }

    @Test(arguments: [("Web_Server.1", "web-server-1"), ("--x--", "x"), ("ÄÖ", "vm"), (String(repeating: "a", count: 70) + "-b", String(repeating: "a", count: 63))])
    func hostNamesDeriveFromTheVMName(name: String, host: String) {
        #expect(VMSettings.hostName(from: name) == host)
    }

    @Test func theLoginUserDefaultsToTheHostUserUnlessRoot() throws {
        let v = VMSettings(SettingsTable())
        #expect(try v.cloudInitUser(hostUser: "ann") == "ann")
        #expect(try v.cloudInitUser(hostUser: "root") == "vmtools")
        #expect(try v.cloudInitUser(hostUser: "Ann.B") == "vmtools")
    }

    @Test(.requires("qemu-img", "qemu-system-x86_64")) func copiesAndForksGetANewIdentityUnlessK() throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-system-x86_64") != nil else { return }
        let cli = try CLI(Scratch())
        let base = cli.scratch.url("base")
        var r = try cli.run("vmcreate", ["-q", "-n", "-y", "-o", "vm_cloudinit_sshkey=\(Self.key)", "--", base])
        try #require(r.status == 0, "\(r.err)")
        // The values in effect (a fork inherits what its file does not say).
        func identity(_ home: String) throws -> [String] {
            let info = try cli.run("vminfo", ["-j", home])
            let doc = try #require(try JSONSerialization.jsonObject(with: Data(info.out.utf8)) as? [[String: Any]])
            let settings = doc[0]["settings"] as? [String: [String: Any]]
            return ["vm_cloudinit_instanceid", "vm_uuid", "vm_networking_iface1_mac"].map { settings?[$0]?["value"] as? String ?? "" }
        }
        let parent = try identity(base)
        #expect(parent.allSatisfy { !$0.isEmpty })
        for (command, args) in [("vmfork", [base, base + "/f1"]), ("vmcp", [base, cli.scratch.url("c1")])] {
            r = try cli.run(command, args)
            #expect(r.status == 0, "\(r.err)")
            let child = try identity(args[1])
            for i in 0..<3 { #expect(child[i] != parent[i] && !child[i].isEmpty, "\(command): \(child[i])") }
        }
        for (command, args) in [("vmfork", ["-k", base, base + "/f2"]), ("vmcp", ["-k", base, cli.scratch.url("c2")])] {
            r = try cli.run(command, args)
            #expect(r.status == 0, "\(r.err)")
            let child = try identity(args[2])
            #expect(child[0] == parent[0] && child[1] == parent[1], "\(command) -k")
        }
    }

    @Test func aPreseedFileIsOfferedOverQEMUsTFTPWithTheBootParametersToType() throws {
        let s = Scratch()
        let preseed = try s.write("debian.preseed", "d-i debian-installer/locale string en_US\n")
        var c = try plan(s, ["vm_install_preseed": preseed])
        let dir = s.url("vm/tftp")
        #expect(c.argv.contains("user,id=nd1,tftp=\(dir)") && c.argv.contains("user,id=nd2"), "\(c.argv)")
        #expect(c.notices.contains("preseed: boot the Debian installer with: auto=true priority=critical url=tftp://10.0.2.2/preseed.cfg"))
        #expect(c.plan.dryRunLines.contains("would write \(dir) (the TFTP directory: preseed.cfg)"))
        try prepare(s, c)
        #expect(try String(contentsOfFile: dir + "/preseed.cfg", encoding: .utf8) == "d-i debian-installer/locale string en_US\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["preseed.cfg"], "nothing else of the home is served")
        c = try plan(s, ["vm_install_preseed": preseed])
        #expect(c.plan.seedVolumes.isEmpty, "unchanged: not rewritten")
        let e = expectError { _ = try plan(Scratch(), ["vm_install_preseed": preseed, "vm_networking_iface1_enable": "no", "vm_networking_iface2_enable": "no"]) }
        #expect(full(e).contains("vm_install_preseed") && full(e).contains("needs a NIC in user mode"))
    }

    @Test(.requires("xorriso")) func aKickstartFileGoesAsKsCfgOnAnOEMDRVVolume() throws {
        guard requireTool("xorriso") != nil else { return }
        let s = Scratch()
        let ks = try s.write("fedora.ks", "text\nrootpw --lock\n%packages\n@core\n%end\n")
        let c = try plan(s, ["vm_install_kickstart": ks])
        let iso = s.url("vm/oemdrv.iso")
        #expect(c.argv.suffix(6) == ["-drive", "file=\(iso),format=raw,if=none,id=vmtools-oemdrv,readonly=on,media=cdrom",
                                     "-device", "virtio-scsi-pci,id=vmtools-seed-scsi", "-device", "scsi-cd,drive=vmtools-oemdrv,bus=vmtools-seed-scsi.0"])
        #expect(!c.argv.contains("-uuid"), "Kickstart alone does not turn cloud-init on")
        try prepare(s, c)
        let read = try readISO(s, iso)
        #expect(read.label == "OEMDRV")
        #expect(read.files == ["ks.cfg": "text\nrootpw --lock\n%packages\n@core\n%end\n"])
    }
}
