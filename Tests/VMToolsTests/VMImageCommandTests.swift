import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// `vmimage` (vmimage(1)): the catalog listing, pulls from a local server,
/// the cache check, removal refused while a VM uses an image; and the tree
/// commands keeping the users of cached images right (vmcp, vmmv, vmrm,
/// vmfix after a plain mv). Every test has its own cache (XDG_CACHE_HOME).
@Suite struct VMImageCommandTests {
    /// A scratch installation whose cache is its own.
    struct Lab {
        let s = Scratch()
        var cli: CLI
        var cacheDirectory: String { s.url("cache/vmtools/images") }
        var cache: ImageCache { ImageCache(directory: cacheDirectory) }

        init() throws {
            cli = try CLI(s)
            cli.environment["XDG_CACHE_HOME"] = s.url("cache")
            try s.mkdir("vms")
        }

        func run(_ name: String, _ args: [String]) throws -> CLI.Result { try cli.run(name, args, cwd: s.path) }

        func qemuImg(_ args: [String]) throws {
            let r = try Subprocess(try #require(requireTool("qemu-img")), args).run()
            try #require(r.status == 0, "qemu-img \(args): \(r.stderrText)")
        }

        /// A qcow2 "image" of `entry` placed in the cache by hand, as a pull
        /// leaves it: `sha256-HEX.qcow2`, read-only.
        func cachedBase(_ entry: String) throws -> (path: String, digest: ImageDigest) {
            try s.mkdir("cache/vmtools/images")
            let tmp = s.url("base-\(entry).qcow2")
            try qemuImg(["create", "-q", "-f", "qcow2", tmp, "16M"])
            let digest = try VMImageCommand.hash(tmp, .sha256, environment: cli.environment)
            let path = cacheDirectory + "/sha256-\(digest.hex).qcow2"
            try FileManager.default.moveItem(atPath: tmp, toPath: path)
            chmod(path, 0o444)
            return (path, digest)
        }

        /// A VM made from the cached `base` as vmcreate makes one: the
        /// vm_image_* record and a thin overlay, listed among its users.
        func vm(_ rel: String, on base: (path: String, digest: ImageDigest), entry: String) throws -> String {
            let home = s.url(rel)
            try s.mkdir(rel)
            try qemuImg(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", base.path, home + "/\(entry).qcow2"])
            try s.write(rel + "/vm.settings", """
                vm_name=\(rel.lastPathComponent)
                \(SettingKey.imageName)=\(entry)
                \(SettingKey.imageURL)=https://images.example.org/\(entry).qcow2
                \(SettingKey.imageDigest)=\(base.digest)
                vm_storage_hdd1_backend=\(home)/\(entry).qcow2

                """)
            try cache.addUser(home, of: base.digest)
            return home
        }

        func users(_ d: ImageDigest) throws -> [String] { try cache.users(of: d) }
    }

    /// vmcp lists a copy resting on the image (not an autonomous one),
    /// vmmv moves the entry, vmrm drops it, vmfix -s re-lists a VM a plain
    /// mv took away and drops the old path.
    @Test(.requires("qemu-img")) func treeCommandsKeepTheUsers() throws {
        let lab = try Lab()
        let base = try lab.cachedBase("tiny")
        let web = try lab.vm("vms/web", on: base, entry: "tiny")
        let www = lab.s.url("vms/www"), copy = lab.s.url("vms/copy"), flat = lab.s.url("vms/flat"), moved = lab.s.url("vms/moved")
        // Nothing changes for a VM not made from an image.
        let other = try lab.run("vmcreate", ["-q", "-n", "-y", "-o", "vm_storage_hdd1_createsize=8M", "--", lab.s.url("vms/other")])
        try #require(other.status == 0, "\(other.err)")

        var r = try lab.run("vmmv", [web, www])
        try #require(r.status == 0, "\(r.err)")
        #expect(try lab.users(base.digest) == [www])

        r = try lab.run("vmcp", [www, copy])
        try #require(r.status == 0, "\(r.err)")
        #expect(ImageFormat.qcow2Backing(copy + "/tiny.qcow2") == base.path)
        #expect(try lab.users(base.digest) == [copy, www])
        r = try lab.run("vmcp", ["-a", www, flat])
        try #require(r.status == 0, "\(r.err)")
        #expect(ImageFormat.qcow2Backing(flat + "/tiny.qcow2") == nil)
        #expect(try lab.users(base.digest) == [copy, www], "an autonomous copy rests on nothing")
        r = try lab.run("vmmv", [lab.s.url("vms/other"), lab.s.url("vms/other2")])
        try #require(r.status == 0, "\(r.err)")
        #expect(try lab.users(base.digest) == [copy, www])

        // A plain mv: the list still names the old home until vmfix -s.
        try FileManager.default.moveItem(atPath: copy, toPath: moved)
        r = try lab.run("vmfix", ["-n", "-s", moved])
        #expect(r.status == 3 && r.err.contains("\(moved): missing from the users of the cached image \(base.path)"), "\(r.err)")
        #expect(try lab.users(base.digest) == [copy, www], "-n changes nothing")
        r = try lab.run("vmfix", ["-s", moved])
        #expect(r.status == 3, "\(r.err)")
        #expect(r.err.contains("SOLVED: \(base.path): lists \(moved) as a user again"), "\(r.err)")
        #expect(r.err.contains("SOLVED: \(base.path): user \(copy) unregistered"), "\(r.err)")
        #expect(try lab.users(base.digest) == [moved, www])
        r = try lab.run("vmfix", ["-s", moved])
        #expect(r.status == 0, "nothing left to repair: \(r.err)")

        r = try lab.run("vmrm", ["-y", www])
        try #require(r.status == 0, "\(r.err)")
        #expect(try lab.users(base.digest) == [moved])
        r = try lab.run("vmrm", ["-y", "-k", moved])
        try #require(r.status == 0, "\(r.err)")
        #expect(try lab.users(base.digest) == [])
        #expect(!FileManager.default.fileExists(atPath: lab.cache.usersPath(of: base.digest)))
    }
}
