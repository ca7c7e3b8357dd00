import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsLaunch

/// Catalog names where a storage argument is taken (vmcreate(1), vmup(1):
/// IMAGES BY NAME), with the image already in the cache: no download, no
/// network. A file of the same name wins; prefixes keep their meaning; an
/// unknown name is "no such file"; `vmup -n` downloads nothing.
@Suite struct CatalogImageUseTests {
    static let url = "https://images.example/test/test-cloud-amd64.qcow2"

    /// A CLI, its catalog with `test-cloud` (1G of RAM, say) and its image cached.
    func lab(_ s: Scratch) throws -> (CLI, CatalogFixture, ImageCache.Image) {
        let cli = try CLI(s)
        let f = CatalogFixture(s)
        // Key discovery's key, for the cloud-init seed a cloud entry turns on.
        try s.write("home/.ssh/id_ed25519.pub", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGm0vDFakeKeyForTheVmtoolsTests0000000000000 test@host\n")
        let base = try f.image("base.qcow2")
        let image = try f.cached(base, entry: "test-cloud", url: Self.url)
        try f.entry("test-cloud", url: Self.url, digest: image.digest.description, "vm_ram_size=1G\nvm_cpu_count=2\n")
        return (cli, f, image)
    }

    @Test(.requires("qemu-img"))
    func aNameInCMakesAThinOverlayOnTheCachedImageAndRecordsWhereItCameFrom() throws {
        let s = Scratch()
        let (cli, f, image) = try lab(s)
        let r = try cli.run("vmcreate", ["-n", "-y", "-C", "test-cloud", s.url("web")], env: f.env)
        try #require(r.status == 0, "\(r.err)")
        let settings = try CatalogFixture.settings(s.url("web/vm.settings"))
        let disk = s.url("web/test-cloud.qcow2")
        #expect(settings[SettingKey.hdd(1).backend] == disk, "\(settings)")
        #expect(try CatalogFixture.backing(disk) == image.path)
        #expect(settings[SettingKey.imageName] == "test-cloud")
        #expect(settings[SettingKey.imageURL] == Self.url)
        #expect(settings[SettingKey.imageDigest] == image.digest.description)
        // The entry's settings, cloud-init, and the virtio a cloud image needs.
        #expect(settings[SettingKey.ramSize] == "1G" && settings[SettingKey.cpuCount] == "2", "\(settings)")
        #expect(settings[SettingKey.cloudInitEnable] == "yes")
        #expect(settings[SettingKey.hddInterface] == "virtio")
        // The cached base lists its user; the image itself is untouched.
        #expect(try f.cache.users(of: image.digest) == [s.url("web")])
        #expect(try SHA256.file(image.path) == image.digest.hex)
        // vminfo shows it, and the VM starts (dry run) without cfg_host_paths for the cache.
        let info = try cli.run("vminfo", ["-i", s.url("web")], env: f.env)
        #expect(info.out.contains("Image: test-cloud from \(Self.url)"), "\(info.out)")
        let up = try cli.run("vmup", ["-n", s.url("web")], env: f.env)
        #expect(up.status == 0, "\(up.err)")
    }

    /// A creation that fails after the overlay was made (QEMU does not
    /// start) takes the home, the overlay and the image's user record with it.
    @Test(.requires("qemu-img"))
    func aFailedCreationLeavesNoUserOfTheImage() throws {
        let s = Scratch()
        let (cli, f, image) = try lab(s)
        let r = try cli.run("vmcreate", ["-y", "-o", "cfg_qemu_cmdprefix=/nonexistent/qemu-system-", "-o", "vm_display_type=none",
                                         "-C", "test-cloud", s.url("web")], env: f.env)
        #expect(r.status == 1, "\(r.err)")
        #expect(!s.exists("web"))
        #expect(try f.cache.users(of: image.digest).isEmpty)
        #expect(FileManager.default.fileExists(atPath: image.path))
    }

    @Test(.requires("qemu-img"))
    func theCommandLineBeatsTheEntryAndTheEntryBeatsATemplate() throws {
        let s = Scratch()
        let (cli, f, _) = try lab(s)
        try s.write("xdg/vmtools/templates/big.tpl", "vm_ram_size=3G\nvm_cpu_count=4\n")
        let r = try cli.run("vmcreate", ["-n", "-y", "-t", "big", "-o", "vm_cpu_count=3", "-c", "test-cloud", s.url("web")], env: f.env)
        try #require(r.status == 0, "\(r.err)")
        let settings = try CatalogFixture.settings(s.url("web/vm.settings"))
        #expect(settings[SettingKey.ramSize] == "1G", "\(settings)")
        #expect(settings[SettingKey.cpuCount] == "3", "\(settings)")
        // Recorded in the VM's file, the entry's value beats the template at every start too.
        let info = try cli.run("vminfo", ["-s", s.url("web")], env: f.env)
        #expect(info.out.contains("vm_ram_size=1G") || info.out.contains("vm_ram_size='1G'"), "\(info.out)")
    }

    /// vm_storage_hdd1_size, from the entry or -o, is the overlay's size
    /// when larger than the image; a smaller one leaves the image's.
    @Test(.requires("qemu-img"))
    func aSizeSettingGrowsTheOverlayNeverShrinksIt() throws {
        let s = Scratch()
        let (cli, f, image) = try lab(s)
        for (home, size, expected) in [("big", "128M", 128 << 20), ("small", "32M", 64 << 20)] {
            let r = try cli.run("vmcreate", ["-n", "-y", "-o", "vm_storage_hdd1_size=\(size)", "-c", "test-cloud", s.url(home)], env: f.env)
            try #require(r.status == 0, "\(r.err)")
            let disk = s.url("\(home)/test-cloud.qcow2")
            let info = try QemuImg.info(disk, backingChain: false, environment: ProcessInfo.processInfo.environment)
            #expect(info["virtual-size"]?.integerValue == expected, "\(home)")
            #expect(try CatalogFixture.backing(disk) == image.path)
        }
    }

    @Test(.requires("qemu-img"))
    func aFileOfTheSameNameWinsAndIsNoCatalogImage() throws {
        let s = Scratch()
        let (cli, f, _) = try lab(s)
        try s.mkdir("here")
        let own = try f.image("here/test-cloud", size: "16M")
        let r = try cli.run("vmcreate", ["-n", "-y", "-c", "test-cloud", s.url("web")], cwd: s.url("here"), env: f.env)
        try #require(r.status == 0, "\(r.err)")
        let settings = try CatalogFixture.settings(s.url("web/vm.settings"))
        #expect(settings[SettingKey.hdd(1).backend] == own, "\(settings)")
        #expect(settings[SettingKey.imageName] == nil)
        #expect(!s.exists("web/test-cloud.qcow2"))
    }

    @Test(.requires("qemu-img"))
    func aPrefixKeepsItsMeaningOnTheOverlay() throws {
        let s = Scratch()
        let (cli, f, image) = try lab(s)
        let r = try cli.run("vmcreate", ["-n", "-y", "-c", "snap:test-cloud", s.url("web")], env: f.env)
        try #require(r.status == 0, "\(r.err)")
        let settings = try CatalogFixture.settings(s.url("web/vm.settings"))
        #expect(settings[SettingKey.hdd(1).backend] == "snap:" + s.url("web/test-cloud.qcow2"), "\(settings)")
        #expect(try CatalogFixture.backing(s.url("web/test-cloud.qcow2")) == image.path)
        // An existing VM given a name for one start gets the cached image in snapshot mode; rw: is refused.
        let up = try cli.run("vmup", ["-nv", "-c", "test-cloud", s.url("web")], env: f.env)
        #expect(up.status == 0 && up.out.contains("file=\(image.path),format=qcow2") && up.out.contains("snapshot=on"), "\(up.out)\(up.err)")
        let rw = try cli.run("vmup", ["-n", "-c", "rw:test-cloud", s.url("web")], env: f.env)
        #expect(rw.status == 2 && rw.err.contains("never written"), "\(rw.err)")
    }

    @Test(.requires("qemu-img"))
    func anUnknownNameThatIsNoFileIsNoSuchFileAndNoEntry() throws {
        let s = Scratch()
        let (cli, f, _) = try lab(s)
        for (command, args) in [("vmcreate", ["-n", "-y", "-c", "no-such-image", s.url("web")]), ("vmup", ["-n", "no-such-image"]),
                                ("vmup", ["-n", "-d", "no-such-image", s.url("web")])] {
            let r = try cli.run(command, args, env: f.env)
            #expect(r.status == 1, "\(command): \(r.err)")
            #expect(r.err.contains("no-such-image: no such file or directory, and no image catalog entry has that name either"), "\(r.err)")
            #expect(r.err.contains(s.url("share/images")), "it says where it looked: \(r.err)")
        }
        #expect(!s.exists("web"))
    }

    @Test(.requires("qemu-img"))
    func aDryRunDownloadsNothingAndSaysWhatItWould() throws {
        let s = Scratch()
        let (cli, f, _) = try lab(s)
        let other = "https://images.example/other/other-amd64.qcow2"
        try f.entry("other", url: other, digest: "sha256:" + String(repeating: "0", count: 64))
        try s.write("etc/vmtools.conf", "cfg_images_mirror='https://images.example/=http://127.0.0.1:9/'\n")
        let r = try cli.run("vmup", ["-n", "other"], env: f.env)
        #expect(r.err.contains("would download other from http://127.0.0.1:9/other/other-amd64.qcow2"), "\(r.err)")
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("a qcow2 overlay on \(other)"), "\(r.err)")
        #expect(try f.cache.images().map(\.entry) == ["test-cloud"])
        // A cached name: the plan's first step is the overlay in the bare run directory.
        let cached = try cli.run("vmup", ["-n", "test-cloud"], env: f.env)
        #expect(cached.status == 0, "\(cached.err)")
        #expect(!cached.err.contains("would download"), "\(cached.err)")
        #expect(cached.err.contains("/test-cloud.qcow2, a qcow2 overlay on \(f.cache.directory)/sha256-"), "\(cached.err)")
    }

    @Test(.requires("qemu-img"))
    func imagesOverlayNoMakesAFullIndependentCopy() throws {
        let s = Scratch()
        let (cli, f, image) = try lab(s)
        let r = try cli.run("vmcreate", ["-n", "-y", "-o", "cfg_images_overlay=no", "-o", "vm_storage_hdd1_preallocation=metadata",
                                         "-C", "test-cloud", s.url("web")], env: f.env)
        try #require(r.status == 0, "\(r.err)")
        let disk = s.url("web/test-cloud.qcow2")
        #expect(try CatalogFixture.backing(disk) == nil)
        // The copy rests on nothing: the image has no user, and the settings still say where it came from.
        #expect(try f.cache.users(of: image.digest).isEmpty)
        #expect(try CatalogFixture.settings(s.url("web/vm.settings"))[SettingKey.imageDigest] == image.digest.description)
        let info = try QemuImg.info(disk, backingChain: false, environment: ProcessInfo.processInfo.environment)
        #expect(info["virtual-size"]?.integerValue == 64 << 20)
    }

    @Test(.requires("qemu-img"))
    func anISOEntryGivenToDIsTheBootCDROMAndANewDiskIsMade() throws {
        let s = Scratch()
        let (cli, f, _) = try lab(s)
        // The ISO 9660 signature is all ImageProbe needs.
        let iso = try s.writeBytes("netinst.iso", [UInt8](repeating: 0, count: 0x8001) + Array("CD001".utf8) + [UInt8](repeating: 0, count: 0x800))
        let url = "https://images.example/test/netinst.iso"
        let cached = try f.cached(iso, entry: "test-netinst", url: url, fileExtension: "iso")
        try f.entry("test-netinst", kind: "iso", url: url, digest: cached.digest.description)
        let r = try cli.run("vmcreate", ["-n", "-y", "-o", "vm_storage_hdd1_createsize=1G", "-D", "test-netinst", s.url("inst")], env: f.env)
        try #require(r.status == 0, "\(r.err)")
        let settings = try CatalogFixture.settings(s.url("inst/vm.settings"))
        // The installer was CD-ROM 1 for the creation, written commented out as any CD-ROM.
        let file = try s.read("inst/vm.settings")
        #expect(file.contains("# \(SettingKey.cdrom(1).backend)=\(cached.path)\n"), "\(file)")
        #expect(settings[SettingKey.hdd(1).backend] == s.url("inst/hdd.qcow2"))
        #expect(try CatalogFixture.backing(s.url("inst/hdd.qcow2")) == nil)
        #expect(settings[SettingKey.imageName] == "test-netinst" && settings[SettingKey.cloudInitEnable] == nil, "\(settings)")
        #expect(try f.cache.users(of: cached.digest).isEmpty)
        // A dry run of it boots the cached ISO itself, read-only.
        let up = try cli.run("vmup", ["-nv", "-D", "test-netinst", s.url("inst")], env: f.env)
        #expect(up.status == 0 && up.out.contains("file=\(cached.path)") && up.out.contains("media=cdrom"), "\(up.out)\(up.err)")
        // A disk image is no CD-ROM, nor an installer a disk.
        let wrong = try cli.run("vmcreate", ["-n", "-y", "-d", "test-cloud", s.url("w1")], env: f.env)
        #expect(wrong.status == 2 && wrong.err.contains("is a disk image: give it with -c or -C"), "\(wrong.err)")
        let wrong2 = try cli.run("vmcreate", ["-n", "-y", "-c", "test-netinst", s.url("w2")], env: f.env)
        #expect(wrong2.status == 2 && wrong2.err.contains("is an installer ISO: give it with -d or -D"), "\(wrong2.err)")
    }

    /// vm.settings(5), HOST PATHS: a cached image is read from wherever the
    /// VM lies, without cfg_host_paths; writing to one never is.
    @Test func theImageCacheIsAnAcceptedHostPathForReadingOnly() throws {
        let s = Scratch()
        try s.mkdir("cache/vmtools/images")
        let caches = HostPathPolicy.imageCaches(environment: ["XDG_CACHE_HOME": s.url("cache")])
        #expect(caches.contains(s.url("cache/vmtools/images")) && caches.contains("/var/cache/vmtools/images"))
        let policy = HostPathPolicy(trees: [s.url("vm")], allow: [], accepted: [], imageCaches: caches)
        let base = s.url("cache/vmtools/images/sha256-ab.qcow2")
        func path(_ access: HostPath.Access) -> HostPath {
            HostPath(setting: SettingKey.hdd(1).backend, path: base, via: .init(kind: HostPath.Via.backingFile, image: s.url("vm/d.qcow2")),
                     access: access, provenance: .vmFile(path: s.url("vm/vm.settings"), line: 1, depth: 0), real: base)
        }
        #expect(policy.refused([path(.readOnly)]).isEmpty)
        #expect(policy.refused([path(.snapshot)]).isEmpty)
        #expect(policy.refused([path(.readWrite)]).count == 1)
        #expect(HostPathPolicy(trees: [s.url("vm")], allow: [], accepted: []).refused([path(.readOnly)]).count == 1)
        // A command-line image whose backing file is cached.
        var top = path(.readWrite)
        top.via = nil
        top.path = s.url("elsewhere/o.qcow2")
        top.real = top.path
        top.provenance = .commandLine("-c")
        var backing = path(.readOnly)
        backing.provenance = .commandLine("-c")
        #expect(HostPathPolicy.commandLineImageErrors([top, backing], allow: [], imageCaches: caches).isEmpty)
        #expect(HostPathPolicy.commandLineImageErrors([top, backing], allow: []).count == 1)
    }
}
