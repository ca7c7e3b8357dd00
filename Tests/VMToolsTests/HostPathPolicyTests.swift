import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// vm.settings(5) HOST PATHS: a VM's own settings hand the guest no host
/// file outside its tree unless the user named it (-o), allowed it
/// (cfg_host_paths) or accepted the VM's set (vmcreate, vmfix -H).
@Suite struct HostPathPolicyTests {
    static let key = CloudInitTests.key
    /// The settings that name the scratch secrets.
    static let exfiltrating = ["vm_cloudinit_networkconfig", "vm_boot_initrd", "vm_storage_hdd2_backend", "vm_share1_path"]

    /// A downloaded-style VM whose settings name files outside its tree:
    /// a scratch "secret" file and directory beside it, never ~/.ssh.
    func downloaded(_ s: Scratch, name: String = "dl") throws -> String {
        try s.write("outside/secret", "secret\n")
        try s.mkdir("outside/secretdir")
        try s.write("\(name)/vmlinuz", "kernel\n")
        try s.write("\(name)/vm.settings", """
            vm_cloudinit_networkconfig=\(s.url("outside/secret"))
            vm_cloudinit_sshkey='\(Self.key)'
            vm_boot_kernel=vmlinuz
            vm_boot_initrd=\(s.url("outside/secret"))
            vm_storage_hdd2_backend=\(s.url("outside/secret"))
            vm_storage_hdd2_enable=yes
            vm_share1_path=\(s.url("outside/secretdir"))

            """)
        return s.url(name)
    }

    func refusedSettings(_ r: CLI.Result) -> [String] {
        r.err.split(separator: "\n").compactMap { line in
            guard line.contains("lies outside the VM's tree") else { return nil }
            return line.split(separator: " ").dropFirst(2).first.map { String($0.dropLast()) }
        }
    }

    @Test func vmupAndVmupNRefuseEveryOutsidePathOfADownloadedVM() throws {
        let s = Scratch()
        let cli = try CLI(s)
        let home = try downloaded(s)
        for args in [["-n", home], [home]] {
            let r = try cli.run("vmup", args)
            #expect(r.status == 1, "\(r.err)")
            #expect(Set(refusedSettings(r)) == Set(Self.exfiltrating), "\(r.err)")
            // One line each: the setting, the file and line, the path, the three ways out.
            #expect(r.err.contains("vmup: ERROR: vm_boot_initrd: '\(s.url("outside/secret"))' (from \(home)/vm.settings:4) lies outside the VM's tree \(home)"))
            #expect(r.err.contains("vm_share1_path: '\(s.url("outside/secretdir"))' (from \(home)/vm.settings:7)"))
            for line in r.err.split(separator: "\n") {
                #expect(line.contains("-o") && line.contains("cfg_host_paths in \(s.url("xdg"))/vmtools/vmtools.conf") && line.contains("'vmfix -H \(home)'"))
            }
        }
        // Nothing was started or written.
        #expect(!s.exists("dl/qemu.pid") && !s.exists("dl/cidata.iso"))
    }

    @Test func theSamePathsGivenWithDashOAreTheUsersDecision() throws {
        let s = Scratch()
        let cli = try CLI(s)
        let home = try downloaded(s)
        var args = ["-n"]
        for setting in Self.exfiltrating {
            let value = setting == "vm_share1_path" ? s.url("outside/secretdir") : s.url("outside/secret")
            args += ["-o", "\(setting)=\(value)"]
        }
        let r = try cli.run("vmup", args + [home])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("would hand the guest \(s.url("outside/secretdir")) (vm_share1_path, read-write, from command line (-o))"))
        #expect(r.err.contains("would hand the guest \(s.url("outside/secret")) (vm_boot_initrd, read-only, from command line (-o))"))
        // The kernel inside the tree needs nothing.
        #expect(r.err.contains("would hand the guest \(home)/vmlinuz (vm_boot_kernel, read-only, from \(home)/vm.settings:3)"))
    }

    @Test func cfgHostPathsInTheUsersConfigurationAllowsThem() throws {
        let s = Scratch()
        let cli = try CLI(s)
        let home = try downloaded(s)
        try s.write("xdg/vmtools/vmtools.conf", "cfg_host_paths='/nonexistent:\(s.url("outside"))'\n")
        let r = try cli.run("vmup", ["-n", home])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("would hand the guest \(s.url("outside/secret")) (vm_storage_hdd2_backend, read-write, from \(home)/vm.settings:5)"))
        // Only what it lists: a path beside it stays refused.
        try s.write("xdg/vmtools/vmtools.conf", "cfg_host_paths='\(s.url("outside/secretdir"))'\n")
        let narrow = try cli.run("vmup", ["-n", home])
        #expect(narrow.status == 1)
        #expect(Set(refusedSettings(narrow)) == Set(Self.exfiltrating).subtracting(["vm_share1_path"]))
        // -o sets it too; a relative entry is an error naming the setting.
        #expect(try cli.run("vmup", ["-n", "-o", "cfg_host_paths=\(s.url("outside"))", home]).status == 0)
        let bad = try cli.run("vmup", ["-n", "-o", "cfg_host_paths=outside", home])
        #expect(bad.err.contains("cfg_host_paths: 'outside' (from command line (-o)): 'outside' is not an absolute path"), "\(bad.err)")
    }

    @Test func aVMCannotGrantItselfHostPaths() throws {
        let s = Scratch()
        let cli = try CLI(s)
        let home = try downloaded(s)
        try s.write("dl/vm.settings", try s.read("dl/vm.settings") + "cfg_host_paths=/\n")
        let r = try cli.run("vmup", ["-n", home])
        #expect(r.status == 1)
        #expect(r.err.contains("cfg_* settings belong in vmtools.conf"), "\(r.err)")
        // Nor can a template it names: templates set vm_* settings only.
        try s.write("dl/vm.settings", try s.read("dl/vm.settings").replacingOccurrences(of: "cfg_host_paths=/\n", with: "template grant\n"))
        try s.write("xdg/vmtools/templates/grant.tpl", "cfg_host_paths='/'\n")
        let t = try cli.run("vmup", ["-n", home])
        #expect(t.status == 1)
        #expect(Set(refusedSettings(t)) == Set(Self.exfiltrating), "\(t.err)")
    }

    @Test func vmcreateRecordsWhatItsCommandLineGave() throws {
        let s = Scratch()
        let cli = try CLI(s)
        try s.mkdir("src")
        try s.write("images/x.raw", String(repeating: "\0", count: 4096))
        let c = try cli.run("vmcreate", ["-n", "-o", "vm_share1_path=\(s.url("src"))", "-o", "vm_cloudinit_enable=no",
                                         "-o", "vm_storage_hdd2_backend=\(s.url("images/x.raw"))", "-o", "vm_storage_hdd2_enable=yes",
                                         s.url("web")])
        #expect(c.status == 0, "\(c.err)")
        #expect(try s.read("web/vm.settings").contains("vm_share1_path="))
        let state = s.url("home/.local/state/vmtools/accepted-host-paths")
        #expect(FileSystem.mode(state) == 0o600)
        #expect(try s.read("home/.local/state/vmtools/accepted-host-paths").split(separator: "\n").count == 1)
        let r = try cli.run("vmup", ["-n", s.url("web")])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("would hand the guest \(s.url("src")) (vm_share1_path, read-write, from \(s.url("web"))/vm.settings:"))
        // Another path in that file is a new set: refused until accepted.
        try s.write("web/vm.settings", try s.read("web/vm.settings") + "vm_share2_path=\(s.url("images"))\n")
        let again = try cli.run("vmup", ["-n", s.url("web")])
        #expect(again.status == 1)
        #expect(refusedSettings(again) == ["vm_storage_hdd2_backend", "vm_share1_path", "vm_share2_path"], "\(again.err)")
    }

    @Test func vmfixHPrintsThePathsAndAcceptsThem() throws {
        let s = Scratch()
        let cli = try CLI(s)
        let home = try downloaded(s)
        // -n prints and records nothing.
        let check = try cli.run("vmfix", ["-n", "-H", home])
        #expect(check.status == 3, "\(check.err)")
        #expect(check.err.contains("vmfix: WARNING: \(home)/vm.settings: hands the guest host paths outside the VM's tree:"))
        #expect(check.err.contains("vm_share1_path=\(s.url("outside/secretdir")), read-write, from \(home)/vm.settings:7"))
        #expect(!s.exists("home/.local/state/vmtools/accepted-host-paths"))
        #expect(try cli.run("vmup", ["-n", home]).status == 1)
        let fix = try cli.run("vmfix", ["-H", home])
        #expect(fix.status == 3)
        #expect(fix.err.contains("vmfix: SOLVED: \(home)/vm.settings: these host paths are accepted"))
        #expect(try cli.run("vmup", ["-n", home]).status == 0)
        // Nothing left to accept; -a and -A never accept.
        #expect(try cli.run("vmfix", ["-H", home]).status == 0)
        let other = try downloaded(s, name: "other")
        try s.write("other/vm.settings", try s.read("other/vm.settings") + "vm_storage_cdrom1_backend=\(s.url("outside/secret"))\nvm_storage_cdrom1_enable=yes\n")
        _ = try cli.run("vmfix", ["-A", other])
        #expect(try cli.run("vmup", ["-n", other]).status == 1)
        // Keyed on what the file hands out: a moved VM keeps its acceptance.
        try FileManager.default.moveItem(atPath: home, toPath: s.url("moved"))
        let moved = try cli.run("vmup", ["-n", s.url("moved")])
        #expect(moved.status == 0, "\(moved.err)")
    }

    @Test func aLinkInsideTheHomeToAFileOutsideIsOutside() throws {
        let s = Scratch()
        let cli = try CLI(s)
        try s.write("outside/secret", "secret\n")
        try s.write("vm/disk.img", String(repeating: "\0", count: 4096))
        try FileManager.default.createSymbolicLink(atPath: s.url("vm/link.img"), withDestinationPath: s.url("outside/secret"))
        try FileManager.default.createSymbolicLink(atPath: s.url("vm/inner.img"), withDestinationPath: "disk.img")
        try s.write("vm/vm.settings", "vm_storage_hdd1_backend=link.img\nvm_storage_hdd1_enable=yes\nvm_storage_hdd2_backend=inner.img\nvm_storage_hdd2_enable=yes\nvm_cloudinit_enable=no\n")
        let r = try cli.run("vmup", ["-n", s.url("vm")])
        #expect(r.status == 1)
        #expect(refusedSettings(r) == ["vm_storage_hdd1_backend"], "\(r.err)")
        #expect(r.err.contains("'\(s.url("vm/link.img"))' (really \(s.url("outside/secret"))) (from \(s.url("vm"))/vm.settings:1)"))
    }

    @Test(.requires("qemu-img")) func aQcow2DataFileOrBackingFileOutsideIsRefusedAndShownByVminfo() throws {
        let s = Scratch()
        let cli = try CLI(s)
        try s.mkdir("vm")
        try s.write("outside/secret", "secret\n")
        // The attack of issue 22: a raw data file the guest would write into.
        let img = "/usr/bin/qemu-img"
        for args in [["create", "-q", "-f", "qcow2", "-o", "data_file=\(s.url("outside/secret")),data_file_raw=on", s.url("vm/data.qcow2"), "1M"],
                     ["create", "-q", "-f", "qcow2", s.url("outside/base.qcow2"), "1M"],
                     ["create", "-q", "-f", "qcow2", "-b", s.url("outside/base.qcow2"), "-F", "qcow2", s.url("vm/over.qcow2")]] {
            #expect(try Subprocess(img, args).run().status == 0)
        }
        try s.write("outside/secret", "secret\n")
        #expect(ImageFormat.qcow2DataFile(s.url("vm/data.qcow2")) == s.url("outside/secret"))
        #expect(ImageFormat.qcow2DataFile(s.url("vm/over.qcow2")) == nil)
        try s.write("vm/vm.settings", "vm_storage_hdd1_backend=data.qcow2\nvm_storage_hdd1_enable=yes\nvm_storage_hdd2_backend=over.qcow2\nvm_storage_hdd2_enable=yes\nvm_cloudinit_enable=no\n")
        let home = s.url("vm")
        for args in [["-n", home], [home]] {
            let r = try cli.run("vmup", args)
            #expect(r.status == 1)
            #expect(r.err.contains("vm_storage_hdd1_backend: the data file '\(s.url("outside/secret"))' of \(home)/data.qcow2 (from \(home)/vm.settings:1) lies outside"), "\(r.err)")
            #expect(r.err.contains("vm_storage_hdd2_backend: the backing file '\(s.url("outside/base.qcow2"))' of \(home)/over.qcow2 (from \(home)/vm.settings:3) lies outside"), "\(r.err)")
        }
        #expect(try s.read("outside/secret") == "secret\n")
        let info = try cli.run("vminfo", ["-b", home])
        #expect(info.out.contains("Data file: \(s.url("outside/secret")) (outside the VM's tree)"), "\(info.out)")
        #expect(info.out.contains("Backing file outside the VM's tree: \(s.url("outside/base.qcow2"))"))
        let json = try cli.run("vminfo", ["-j", home])
        let vms = try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]]
        let disks = vms?.first?["disks"] as? [[String: Any]] ?? []
        let data = disks.first { $0["slot"] as? String == "hdd1" }?["data_files"] as? [[String: Any]]
        #expect(data?.first?["path"] as? String == s.url("outside/secret"))
        #expect(data?.first?["in_tree"] as? Bool == false)
        #expect(disks.first { $0["slot"] as? String == "hdd2" }?["outside_backing_files"] as? [String] == [s.url("outside/base.qcow2")])
        // Accepted, the -n lines name each file and how the guest gets it.
        #expect(try cli.run("vmfix", ["-H", home]).status == 3)
        let n = try cli.run("vmup", ["-n", home])
        #expect(n.status == 0, "\(n.err)")
        #expect(n.err.contains("would hand the guest \(s.url("outside/secret")) (vm_storage_hdd1_backend: data file of \(home)/data.qcow2, read-write, from \(home)/vm.settings:1)"))
        #expect(n.err.contains("would hand the guest \(s.url("outside/base.qcow2")) (vm_storage_hdd2_backend: backing file of \(home)/over.qcow2, read-only, from \(home)/vm.settings:3)"))
        let snap = try cli.run("vmup", ["-n", "-s", home])
        #expect(snap.err.contains("would hand the guest \(home)/data.qcow2 (vm_storage_hdd1_backend, snapshot, from \(home)/vm.settings:1)"), "\(snap.err)")
    }

    @Test(.requires("qemu-img")) func aForkAnywhereSharesItsParentsTreeButAParentLineAloneDoesNot() throws {
        let s = Scratch()
        let cli = try CLI(s)
        try s.write("base/vm.settings", "vm_storage_hdd1_backend=disk.qcow2\nvm_storage_hdd1_enable=yes\nvm_cloudinit_enable=no\n")
        #expect(try Subprocess("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", s.url("base/disk.qcow2"), "1M"]).run().status == 0)
        // vmfork lists the fork in base's childs.lst: the base's disk is the fork's backing file.
        try s.mkdir("elsewhere")
        #expect(try cli.run("vmfork", [s.url("base"), s.url("elsewhere/fork")]).status == 0)
        let fork = try cli.run("vmup", ["-n", s.url("elsewhere/fork")])
        #expect(fork.status == 0, "\(fork.err)")
        #expect(fork.err.contains("would hand the guest \(s.url("base/disk.qcow2")) (vm_storage_hdd1_backend: backing file of "), "\(fork.err)")
        // A downloaded VM that names the user's VM as its parent gets none of its files.
        try s.write("dl/vm.settings", "parent \(s.url("base"))\nvm_storage_hdd2_backend=\(s.url("base/disk.qcow2"))\nvm_storage_hdd2_enable=yes\n")
        let dl = try cli.run("vmup", ["-n", "-s", s.url("dl")])
        #expect(dl.status == 1)
        #expect(refusedSettings(dl) == ["vm_storage_hdd2_backend"], "\(dl.err)")
        #expect(dl.err.contains("lies outside the VM's tree \(s.url("dl")),"), "\(dl.err)")
    }

    @Test(.requires("qemu-img")) func vmcpAndVmforkRefuseAVMWhoseHostPathsAreRefused() throws {
        let s = Scratch()
        let cli = try CLI(s)
        let home = try downloaded(s)
        // A copy would carry the secret into its own tree, where it no longer looks outside.
        for command in ["vmcp", "vmfork"] {
            let r = try cli.run(command, [home, s.url("\(command)-copy")])
            #expect(r.status == 1, "\(r.err)")
            #expect(r.err.contains("lies outside the VM's tree \(home)"), "\(r.err)")
            #expect(!s.exists("\(command)-copy/vm.settings"))
        }
        #expect(try cli.run("vmfix", ["-H", home]).status == 3)
        let copy = try cli.run("vmcp", [home, s.url("copy")])
        #expect(copy.status == 0, "\(copy.err)")
        #expect(try cli.run("vmup", ["-n", s.url("copy")]).status == 0)
        // A host path given to vmfork with -o is the user's, recorded like vmcreate's.
        try s.mkdir("src")
        let fork = try cli.run("vmfork", ["-o", "vm_share2_path=\(s.url("src"))", home, s.url("fork")])
        #expect(fork.status == 0, "\(fork.err)")
        let up = try cli.run("vmup", ["-n", s.url("fork")])
        #expect(up.status == 0, "\(up.err)")
        #expect(up.err.contains("would hand the guest \(s.url("src")) (vm_share2_path, read-write, from \(s.url("fork"))/vm.settings:"), "\(up.err)")
    }

    @Test func aVMDKDescriptorsExtentOutsideIsRefused() throws {
        let s = Scratch()
        let cli = try CLI(s)
        try s.write("outside/secret", "secret\n")
        try s.write("vm/inside.raw", String(repeating: "\0", count: 512))
        try s.write("vm/disk.vmdk", """
            # Disk DescriptorFile
            version=1
            createType="monolithicFlat"
            RW 1 FLAT "inside.raw" 0
            RW 1 FLAT "\(s.url("outside/secret"))" 0

            """)
        try s.write("vm/vm.settings", "vm_storage_hdd1_backend=disk.vmdk\nvm_storage_hdd1_enable=yes\nvm_cloudinit_enable=no\n")
        #expect(ImageFormat.vmdkDescriptorFiles(s.url("vm/disk.vmdk")) == [s.url("vm/inside.raw"), s.url("outside/secret")])
        let r = try cli.run("vmup", ["-n", s.url("vm")])
        #expect(r.status == 1)
        #expect(r.err.contains("vm_storage_hdd1_backend: the extent '\(s.url("outside/secret"))' of \(s.url("vm/disk.vmdk")) (from "), "\(r.err)")
        #expect(r.err.split(separator: "\n").filter { $0.contains("lies outside") }.count == 1, "\(r.err)")
    }

    @Test func aForksDisksInItsParentsHomeAreInItsTree() throws {
        let s = Scratch()
        let policy = HostPathPolicy(trees: [s.url("parent/fork"), s.url("parent")], allow: [], accepted: [])
        func path(_ p: String, _ file: String) -> HostPath {
            HostPath(setting: "vm_storage_hdd1_backend", path: p, via: nil, access: .readWrite,
                     provenance: .vmFile(path: file, line: 1, depth: 0), real: p)
        }
        let inside = path(s.url("parent/disk.qcow2"), s.url("parent/fork/vm.settings"))
        let outside = path(s.url("elsewhere/disk.qcow2"), s.url("parent/fork/vm.settings"))
        #expect(policy.refused([inside]).isEmpty)
        #expect(policy.refused([inside, outside]) == [outside])
        // A prefix of the name is not inside.
        #expect(policy.refused([path(s.url("parent2/x"), "f")]).count == 1)
        // Values not from a vm.settings are the user's.
        var fromConfig = outside
        fromConfig.provenance = .commandLine("-o")
        #expect(policy.refused([fromConfig]).isEmpty)
    }
}
