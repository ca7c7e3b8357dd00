import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// Thin and thick disks, growing a disk before start, direct kernel boot
/// (vm.settings(5), vmtools.conf(5)): settings, plans, what qemu-img made,
/// and what the guest sees.
@Suite(.serialized) struct DisksTests {
    static let qemuImg = "/usr/bin/qemu-img"

    /// A VM home holding a qcow2 disk of `size` as hdd1, and `extra` settings.
    func makeVM(_ s: Scratch, _ name: String, size: String = "16M", _ extra: String = "") throws -> String {
        try s.write("\(name)/vm.settings", """
        vm_storage_hdd1_enable=yes
        vm_storage_hdd1_backend=disk.qcow2
        vm_display_type=none
        \(extra)
        """)
        #expect(try Subprocess(Self.qemuImg, ["create", "-q", "-f", "qcow2", s.url("\(name)/disk.qcow2"), size]).run().status == 0)
        return s.url(name)
    }

    func virtualSize(_ path: String) throws -> Int? {
        try QemuImg.info(path, backingChain: false, environment: ["PATH": "/usr/bin:/bin"])["virtual-size"]?.numberValue.map { Int($0) }
    }

    // MARK: settings

    @Test func theTypedSettingsParseAndRefuse() throws {
        var t = SettingsTable()
        t.set("vm_storage_hdd3_preallocation", "falloc", .commandLine("-o"))
        t.set("vm_storage_hdd3_size", "2G", .commandLine("-o"))
        t.set("vm_storage_hdd4_preallocation", "thick", .commandLine("-o"))
        t.set("vm_storage_hdd4_size", "2GB", .commandLine("-o"))
        let vm = VMSettings(t)
        #expect(try vm.hdd(3).preallocation() == .falloc)
        #expect(try vm.hdd(3).size()?.bytes == 2 << 30)
        #expect(try vm.hdd(1).preallocation() == .off)
        #expect(try vm.hdd(1).size() == nil)
        #expect(expectError { _ = try vm.hdd(4).preallocation() }?.message.contains("expected off, metadata, falloc or full") == true)
        let e = expectError { _ = try vm.hdd(4).size() }
        #expect(e?.subject == "vm_storage_hdd4_size" && e?.message.contains("'2GB'") == true, "\(String(describing: e))")
    }

    @Test func directBootNeedsAKernelAndExistingFiles() throws {
        let s = Scratch()
        try s.write("vm/vmlinuz", "kernel")
        var t = SettingsTable()
        t.set("vm_boot_append", "console=ttyS0", .commandLine("-o"))
        let noKernel = expectError { _ = try VMSettings(t).directBoot(home: s.url("vm"), environment: [:]) }
        #expect(noKernel?.subject == "vm_boot_append" && noKernel?.message.contains("needs a kernel (vm_boot_kernel)") == true)
        t.set("vm_boot_kernel", "vmlinuz", .commandLine("-o"))
        t.set("vm_boot_initrd", "missing.gz", .commandLine("-o"))
        let missing = expectError { _ = try VMSettings(t).directBoot(home: s.url("vm"), environment: [:]) }
        #expect(missing?.subject == "vm_boot_initrd" && missing?.message.contains("no readable file at \(s.url("vm/missing.gz"))") == true)
        t.set("vm_boot_initrd", "", .commandLine("-o"))
        #expect(try VMSettings(t).directBoot(home: s.url("vm"), environment: [:])
                == .init(kernel: s.url("vm/vmlinuz"), initrd: nil, append: "console=ttyS0"))
    }

    // MARK: plans

    @Test(.requires("qemu-img")) func theBootModuleAddsKernelInitrdAndAppend() throws {
        let s = Scratch()
        let cli = try CLI(s)
        let home = try makeVM(s, "k", """
        vm_boot_kernel=vmlinuz
        vm_boot_initrd='~/boot/initrd.gz'
        vm_boot_append='console=ttyS0 root=/dev/vda a,b'
        """)
        try s.write("k/vmlinuz", "kernel")
        try s.write("home/boot/initrd.gz", "initrd")
        // The initrd lies outside the VM's tree: the user accepts it (vm.settings(5), HOST PATHS).
        #expect(try cli.run("vmfix", ["-H", home]).status == 3)
        let r = try cli.run("vmup", ["-n", "-v", home])
        #expect(r.status == 0, "\(r.err)")
        let line = try #require(r.outLines.first { $0.hasPrefix("/") })
        // Whole arguments: nothing to escape, the commas stay single.
        #expect(line.contains("-boot order=cd -kernel \(home)/vmlinuz -initrd \(s.url("home/boot/initrd.gz")) -append 'console=ttyS0 root=/dev/vda a,b' "),
                "\(line)")
        try FileManager.default.removeItem(atPath: s.url("k/vmlinuz"))
        let gone = try cli.run("vmup", ["-n", home])
        #expect(gone.status == 1)
        #expect(gone.err.contains("vmup: ERROR: vm_boot_kernel: 'vmlinuz' (from \(home)/vm.settings:"), "\(gone.err)")
        #expect(gone.err.contains("no readable file at \(home)/vmlinuz"), "\(gone.err)")
    }

    @Test(.requires("qemu-img")) func vmupNSaysWhatWouldGrowAndNeverShrinks() throws {
        let s = Scratch()
        let cli = try CLI(s)
        let home = try makeVM(s, "g", "vm_storage_hdd1_size=64M")
        let dry = try cli.run("vmup", ["-n", home])
        #expect(dry.status == 0, "\(dry.err)")
        #expect(dry.err.contains("vmup: NOTICE: would grow \(home)/disk.qcow2 from 16M to 64M\n"), "\(dry.err)")
        #expect(try virtualSize(home + "/disk.qcow2") == 16 << 20)

        let same = try cli.run("vmup", ["-n", "-o", "vm_storage_hdd1_size=16M", home])
        #expect(same.status == 0 && !same.err.contains("grow"), "\(same.err)")

        let smaller = try cli.run("vmup", ["-n", "-o", "vm_storage_hdd1_size=8M", home])
        #expect(smaller.status == 1)
        #expect(smaller.err == "vmup: ERROR: vm_storage_hdd1_size: '8M' (from command line (-o)): \(home)/disk.qcow2 is 16M, larger than 8M; a disk is never shrunk\n",
                "\(smaller.err)")

        // Snapshot mode: the disk is not QEMU's to write, nor ours to grow.
        let snap = try cli.run("vmup", ["-n", "-s", home])
        #expect(snap.status == 0 && snap.err.contains("vm_storage_hdd1_size=64M not applied: \(home)/disk.qcow2 is used in snapshot mode"), "\(snap.err)")
        #expect(!snap.err.contains("would grow"))

        let remote = try cli.run("vmup", ["-n", "-o", "vm_storage_hdd1_backend=nbd:127.0.0.1:10809", home])
        #expect(remote.status == 1 && remote.err.contains("vm_storage_hdd1_size: '64M' (from \(home)/vm.settings:4): a remote disk cannot be grown"),
                "\(remote.err)")

        // Beside a createsize, a new disk is made with the larger size.
        let both = try cli.run("vmup", ["-n", "-o", "vm_storage_hdd2_createsize=32M", "-o", "vm_storage_hdd2_size=48M",
                                        "-o", "vm_storage_hdd2_preallocation=metadata", home])
        #expect(both.err.contains("vmup: NOTICE: would create \(home)/hdd2.qcow2 (48M, preallocation=metadata)\n"), "\(both.err)")
        let under = try cli.run("vmup", ["-n", "-o", "vm_storage_hdd2_createsize=32M", "-o", "vm_storage_hdd2_size=16M", home])
        #expect(under.status == 1 && under.err.contains("vm_storage_hdd2_size: '16M' (from command line (-o)): smaller than vm_storage_hdd2_createsize=32M"),
                "\(under.err)")
    }

    @Test(.requires("qemu-img")) func aDiskWithForksIsNotGrownButAForksOwnOverlayIs() throws {
        let s = Scratch()
        let cli = try CLI(s)
        let base = try makeVM(s, "base", "vm_storage_hdd1_size=32M")
        let fork = try cli.run("vmfork", [base, s.url("fork")])
        try #require(fork.status == 0, "\(fork.err)")
        let overlay = try #require(try FileManager.default.contentsOfDirectory(atPath: s.url("fork")).first { $0.hasSuffix(".qcow2") })

        // The fork inherits the size; growing it touches its overlay only.
        let child = try cli.run("vmup", ["-n", s.url("fork")])
        #expect(child.status == 0, "\(child.err)")
        #expect(child.err.contains("would grow \(s.url("fork/\(overlay)")) from 16M to 32M"), "\(child.err)")
        #expect(!child.err.contains("would grow \(base)"), "\(child.err)")

        let parent = try cli.run("vmup", ["-n", base])
        #expect(parent.status == 1)
        // With -s the base is not written: a notice, and it starts.
        let snap = try cli.run("vmup", ["-n", "-s", base])
        #expect(snap.status == 0 && snap.err.contains("not applied"), "\(snap.err)")
        #expect(parent.err.contains("vmup: ERROR: vm_storage_hdd1_size: '32M' (from \(base)/vm.settings:4): cannot grow \(base)/disk.qcow2: the fork \(s.url("fork")) uses it as its backing file"),
                "\(parent.err)")
    }

    // MARK: what qemu-img makes

    @Test(.requires("qemu-img")) func thickCreationAllocatesTheWholeDiskThinStaysSmall() throws {
        let s = Scratch()
        let cli = try CLI(s)
        func create(_ name: String, _ mode: String?) throws -> (virtual: Int?, allocated: Int?) {
            let extra = mode.map { ["-o", "vm_storage_hdd1_preallocation=\($0)"] } ?? []
            let r = try cli.run("vmcreate", ["-y", "-n", "-o", "vm_storage_hdd1_createsize=64M"] + extra + [s.url(name)])
            #expect(r.status == 0, "\(r.err)")
            let info = try QemuImg.info(s.url("\(name)/hdd.qcow2"), backingChain: false, environment: ["PATH": "/usr/bin:/bin"])
            return (info["virtual-size"]?.numberValue.map { Int($0) }, info["actual-size"]?.numberValue.map { Int($0) })
        }
        let thin = try create("thin", nil)
        #expect(thin.virtual == 64 << 20)
        #expect(try #require(thin.allocated) < 1 << 20)
        let metadata = try create("metadata", "metadata")
        #expect(try #require(metadata.allocated) < 4 << 20)
        for mode in ["falloc", "full"] {
            let thick = try create(mode, mode)
            #expect(thick.virtual == 64 << 20)
            #expect(try #require(thick.allocated) >= 64 << 20, "\(mode)")
        }
        let bad = try cli.run("vmcreate", ["-y", "-n", "-o", "vm_storage_hdd1_createsize=64M", "-o", "vm_storage_hdd1_preallocation=thick", s.url("bad")])
        #expect(bad.status == 1 && bad.err.contains("vm_storage_hdd1_preallocation: 'thick' (from command line (-o)): expected off, metadata, falloc or full"))
        #expect(!s.exists("bad"))
    }

    @Test(.requires("qemu-img")) func aConvertedImageIsPreallocatedToo() throws {
        let s = Scratch()
        let cli = try CLI(s)
        #expect(try Subprocess(Self.qemuImg, ["create", "-q", "-f", "vmdk", s.url("img.vmdk"), "32M"]).run().status == 0)
        // vmup -n only says it would convert (the conversion is a step of the plan); vmcreate -n converts.
        let r = try cli.run("vmup", ["-n", "-y", "-o", "vm_display_type=none", "-o", "vm_storage_hdd1_preallocation=full", s.url("img.vmdk")])
        #expect(r.status == 0 && r.err.contains("would convert \(s.url("img.vmdk")) into \(s.url("img.qcow2"))"), "\(r.err)")
        #expect(!s.exists("img.qcow2"))
        let made = try cli.run("vmcreate", ["-n", "-y", "-o", "vm_display_type=none", "-o", "vm_storage_hdd1_preallocation=full",
                                            "-o", "vm_storage_hdd2_preallocation=full", "-c", s.url("img.vmdk"), s.url("vm")])
        #expect(made.status == 0, "\(made.err)")
        let info = try QemuImg.info(s.url("vm/img.qcow2"), backingChain: false, environment: ["PATH": "/usr/bin:/bin"])
        #expect(try #require(info["actual-size"]?.numberValue) >= Double(32 << 20))
    }

    // MARK: clones

    @Test(.requires("qemu-img")) func forksUseTheParentsKernelAndCopiesTakeTheirOwn() throws {
        let s = Scratch()
        let cli = try CLI(s)
        let base = try makeVM(s, "base", "vm_boot_kernel=vmlinuz\nvm_boot_initrd=\(s.url("shared/initrd.gz"))")
        try s.write("base/vmlinuz", "kernel")
        try s.write("shared/initrd.gz", "initrd")
        // Accepted once for the base: its fork shares the acceptance, and a
        // copy hands out the same absolute path, so it keeps it (vm.settings(5), HOST PATHS).
        #expect(try cli.run("vmfix", ["-H", base]).status == 3)
        #expect(try cli.run("vmfork", [base, s.url("fork")]).status == 0)
        let forked = try cli.run("vmup", ["-n", "-v", s.url("fork")])
        #expect(forked.status == 0, "\(forked.err)")
        #expect(forked.out.contains("-kernel \(base)/vmlinuz -initrd \(s.url("shared/initrd.gz"))"), "\(forked.out)")

        let copy = try cli.run("vmcp", [base, s.url("copy")])
        #expect(copy.status == 0, "\(copy.err)")
        #expect(try s.read("copy/vmlinuz") == "kernel")
        #expect(try s.read("copy/vm.settings").contains("vm_boot_kernel=vmlinuz"))
        try FileManager.default.removeItem(atPath: s.url("base/vmlinuz"))
        let copied = try cli.run("vmup", ["-n", "-v", s.url("copy")])
        #expect(copied.status == 0, "\(copied.err)")
        #expect(copied.out.contains("-kernel \(s.url("copy/vmlinuz")) -initrd \(s.url("shared/initrd.gz"))"), "\(copied.out)")
    }

    // MARK: the guest

    /// One boot proves both: QEMU gets the kernel, initrd and command line
    /// (the guest kernel prints it), and the guest sees the grown disk.
    @Test(.requiresGuest) func theGuestBootsItsKernelDirectlyAndSeesTheGrownDisk() throws {
        guard let lab = try BootLab.guest() else { return }
        let s = lab.s, cli = lab.cli
        let home = try makeVM(s, "direct", """
        vm_storage_hdd1_size=64M
        vm_boot_kernel=vmlinuz
        vm_boot_initrd=initrd.gz
        vm_boot_append='console=ttyS0,115200 panic=-1 vmtools.marker=direct-boot-1'
        """)
        let x = try Subprocess("/usr/bin/xorriso", ["-osirrox", "on", "-indev", Guest.iso, "-extract", "/boot/vmlinuz", home + "/vmlinuz",
                                                    "-extract", "/boot/initrd.gz", home + "/initrd.gz"]).run()
        try #require(x.status == 0, "\(x.stderrText)")
        let up = try cli.run("vmup", [home])
        try #require(up.status == 0, "\(up.err)")
        #expect(up.err.contains("vmup: NOTICE: grew \(home)/disk.qcow2 from 16M to 64M"), "\(up.err)")
        let serial = { textIfPresent(home + "/serial.log") }
        #expect(waitUntil(120) { serial().contains("VMTOOLS-GUEST: READY") }, "\(serial())")
        #expect(serial().contains("Kernel command line: console=ttyS0,115200 panic=-1 vmtools.marker=direct-boot-1"), "\(serial())")
        // 64 MiB in 512-byte sectors: the disk was 16 MiB.
        #expect(serial().contains("VMTOOLS-GUEST: DISK sda size=131072 "), "\(serial())")
        #expect(try cli.run("vmdown", [home]).status == 0)
        #expect(try virtualSize(home + "/disk.qcow2") == 64 << 20)
    }
}
