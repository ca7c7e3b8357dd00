import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// `vmimage` (vmimage(1)): the catalog listing, pulls from a local server
/// (two at once download once), the cache check, removal refused while a
/// VM uses an image (also after vmmv, allowed after vmrm); and the tree
/// commands keeping the users of cached images right (vmcp, vmmv, vmrm,
/// vmfix after a plain mv). Every test has its own cache (XDG_CACHE_HOME).
@Suite struct VMImageCommandTests {
    static let url = "https://images.example/tiny/tiny-amd64.qcow2"

    /// A scratch installation with its own cache and the catalog entry
    /// `tiny` (alias `t`), whose image is cached unless `cached` is false.
    struct Lab {
        let s = Scratch()
        let cli: CLI
        let f: CatalogFixture
        var cache: ImageCache { f.cache }
        /// The image file the entry names (its digest pinned).
        let file: String
        let digest: ImageDigest

        init(cached: Bool = true) throws {
            cli = try CLI(s)
            f = CatalogFixture(s)
            try s.mkdir("vms")
            // Key discovery's key, for the cloud-init seed a cloud entry turns on.
            try s.write("home/.ssh/id_ed25519.pub", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGm0vDFakeKeyForTheVmtoolsTests0000000000000 test@host\n")
            file = try f.image("tiny-amd64.qcow2", size: "16M")
            digest = try #require(ImageDigest(parsing: "sha256:" + SHA256.file(file)))
            try f.entry("tiny", url: VMImageCommandTests.url, digest: digest.description, "image_aliases=t\n")
            if cached { _ = try f.cached(file, entry: "tiny", url: VMImageCommandTests.url) }
        }

        var image: String { cache.directory + "/" + ImageCache.stem(digest) + ".qcow2" }

        func run(_ name: String, _ args: [String]) throws -> CLI.Result { try cli.run(name, args, cwd: s.path, env: f.env) }

        /// `vmcreate -C tiny`: a thin overlay on the cached image, listed among its users.
        func vm(_ rel: String) throws -> String {
            let r = try run("vmcreate", ["-q", "-n", "-y", "-C", "tiny", s.url(rel)])
            try #require(r.status == 0, "\(r.err)")
            return s.url(rel)
        }

        func users() throws -> [String] { try cache.users(of: digest) }
    }

    @Test(.requires("qemu-img")) func listsTheCatalogWithItsCachedBuilds() throws {
        let lab = try Lab()
        try lab.f.entry("netinst", kind: "iso", url: "https://images.example/netinst.iso", digest: "sha256:" + String(repeating: "0", count: 64))
        let r = try lab.run("vmimage", ["-l"])
        try #require(r.status == 0, "\(r.err)")
        let lines = r.outLines.filter { !$0.isEmpty }
        #expect(lines.count == 3, "\(r.out)")
        #expect(lines.first?.split(separator: " ", omittingEmptySubsequences: true) == ["NAME", "KIND", "CACHED", "SIZE", "VERSIONS", "ALIASES"])
        let day = VMImageCommand.day(Int(Date().timeIntervalSince1970))
        let tiny = lines.first { $0.hasPrefix("tiny ") }?.split(separator: " ", omittingEmptySubsequences: true).map(String.init) ?? []
        #expect(tiny.count >= 7 && Array(tiny[1...2]) == ["cloud", "yes"] && tiny.contains(day)
                && tiny.contains("sha256:" + lab.digest.hex.prefix(12)) && tiny.last == "t", "\(r.out)")
        let netinst = lines.first { $0.hasPrefix("netinst ") }?.split(separator: " ", omittingEmptySubsequences: true).map(String.init) ?? []
        #expect(netinst == ["netinst", "iso", "no", "-", "-", "-"], "\(r.out)")

        let j = try lab.run("vmimage", ["-lj"])
        try #require(j.status == 0, "\(j.err)")
        let json = try JSON.parse(j.out)
        let entries = try #require(json.arrayValue)
        #expect(entries.compactMap { $0["name"]?.stringValue } == ["netinst", "tiny"])
        let e = try #require(entries.last)
        #expect(e["kind"] == .string("cloud") && e["cached"] == .bool(true) && e["aliases"] == .array([.string("t")]))
        #expect(e["file"]?.stringValue == lab.s.url("share/images/tiny.image"))
        let size = try #require(FileManager.default.attributesOfItem(atPath: lab.file)[.size] as? Int)
        #expect(e["size"]?.integerValue == size)
        let v = try #require(e["versions"]?.arrayValue?.first)
        #expect(v["digest"]?.stringValue == lab.digest.description && v["path"]?.stringValue == lab.image)
        #expect(v["url"]?.stringValue == Self.url && v["entry"]?.stringValue == "tiny" && v["size"]?.integerValue == size)
        #expect(v["date"]?.stringValue?.hasPrefix(day + "T") == true, "\(v)")
        #expect(entries.first?["cached"] == .bool(false) && entries.first?["versions"] == .array([]))

        // What the completions offer: names and aliases.
        let names = try lab.cli.run("vmtools", ["--list", "images"], env: lab.f.env)
        #expect(names.out == "netinst\nt\ntiny\n", "\(names.out)\(names.err)")
        // Usage: one action, -j with a listing only, operands where they belong.
        for args in [[], ["-l", "-c"], ["-l", "tiny"], ["-c", "tiny"], ["-j", "tiny"], ["-r"]] {
            let u = try lab.run("vmimage", args)
            #expect(u.status == 2, "vmimage \(args): \(u.err)")
        }
    }

    /// Two `vmimage NAME` at once download the image once; a third finds it.
    @Test(.requires("qemu-img", "curl", "python3")) func twoParallelPullsDownloadOnce() throws {
        let lab = try Lab(cached: false)
        try lab.s.mkdir("served/tiny")
        try FileManager.default.copyItem(atPath: lab.file, toPath: lab.s.url("served/tiny/tiny-amd64.qcow2"))
        // Slow enough that the two pulls overlap.
        let server = try TestImageServer(directory: lab.s.url("served"), state: lab.s.url("server"), faults: .init(throttle: 64 << 10))
        defer { server.stop() }
        let mirror = ["-o", "cfg_images_mirror=https://images.example/=\(server.base)/"]
        var env = lab.cli.environment.merging(lab.f.env) { $1 }
        env["PATH"] = lab.cli.bin + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        let outs = [lab.s.url("out1"), lab.s.url("out2")]
        let pulls = try outs.map { out -> Subprocess.Running in
            try Subprocess(lab.cli.bin + "/vmimage", mirror + ["tiny"], environment: env, workingDirectory: lab.s.path).start(output: out)
        }
        // Reaped once: a pid is never signalled after that.
        var statuses: [Int32?] = [nil, nil]
        defer { for (p, st) in zip(pulls, statuses) where st == nil { p.terminate() } }
        #expect(waitUntil(120) {
            for i in pulls.indices where statuses[i] == nil { statuses[i] = pulls[i].exitStatus() }
            return statuses.allSatisfy { $0 != nil }
        }, "the pulls did not end")
        for (status, out) in zip(statuses, outs) {
            let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
            #expect(status == 0, "\(text)")
            #expect(text.contains(lab.image), "each prints where the image is: \(text)")
        }
        let texts = outs.map { (try? String(contentsOfFile: $0, encoding: .utf8)) ?? "" }
        #expect(texts.filter { $0.contains("waiting for another command downloading") }.count == 1, "they overlapped: \(texts)")
        let gets = server.gets("/tiny/tiny-amd64.qcow2")
        #expect(gets.count == 1 && gets.first?.status == 200, "\(server.requests())")
        #expect(lab.cache.image(lab.digest)?.path == lab.image)
        #expect(try SHA256.file(lab.image) == lab.digest.hex)
        let third = try lab.run("vmimage", mirror + ["t"])
        #expect(third.status == 0 && third.out == lab.image + "\n", "\(third.out)\(third.err)")
        #expect(server.gets("/tiny/tiny-amd64.qcow2").count == 1, "the alias pulls the cached image: \(server.requests())")
        let empty = try Lab(cached: false).run("vmimage", ["-c"])
        #expect(empty.status == 0 && empty.out.isEmpty, "\(empty.out)\(empty.err)")
        let unknown = try lab.run("vmimage", mirror + ["tiny", "no-such-entry"])
        #expect(unknown.status == 1 && unknown.err.contains("no-such-entry"), "\(unknown.err)")
        #expect(unknown.out == lab.image + "\n", "the other operand still worked: \(unknown.out)")
    }

    /// `-c` reports a corrupt image by its file, lists an unused one, and
    /// drops users that no longer use their image.
    @Test(.requires("qemu-img")) func checkFindsACorruptAndAnUnusedImage() throws {
        let lab = try Lab()
        let web = try lab.vm("vms/web")
        let other = try lab.f.image("other.qcow2", size: "8M")
        let unused = try lab.f.cached(other, entry: "other", url: "https://images.example/other.qcow2")
        try lab.cache.addUser(lab.s.url("vms/gone"), of: lab.digest)
        #expect(try lab.users() == [lab.s.url("vms/gone"), web])

        var r = try lab.run("vmimage", ["-c"])
        #expect(r.status == 0, "\(r.err)")
        let rows = r.outLines.filter { !$0.isEmpty }.map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        #expect(rows.first == ["DIGEST", "ENTRY", "DATE", "SIZE", "STATE", "USERS"])
        #expect(rows.contains { $0[1] == "tiny" && $0.suffix(2) == ["ok", "1"] }, "\(r.out)")
        #expect(rows.contains { $0[1] == "other" && $0.suffix(2) == ["ok", "unused"] }, "\(r.out)")
        #expect(r.err.contains("dropped the stale user \(lab.s.url("vms/gone"))"), "\(r.err)")
        #expect(try lab.users() == [web])

        // One byte changed in the unused image.
        chmod(unused.path, 0o644)
        let h = try #require(FileHandle(forUpdatingAtPath: unused.path))
        try h.seek(toOffset: 1 << 20)
        h.write(Data([0x55]))
        try h.close()
        r = try lab.run("vmimage", ["-cj"])
        #expect(r.status == 3, "\(r.err)")
        #expect(r.err.contains("WARNING: \(unused.path): corrupt: it hashes to sha256:"), "\(r.err)")
        #expect(r.err.contains("not \(unused.digest) (entry other)"), "\(r.err)")
        let json = try #require(try JSON.parse(r.out).arrayValue)
        let bad = try #require(json.first { $0["entry"]?.stringValue == "other" })
        #expect(bad["state"] == .string("corrupt") && bad["unused"] == .bool(true) && bad["users"] == .array([]))
        let found = try SHA256.file(unused.path)
        #expect(bad["found"]?.stringValue == "sha256:" + found)
        let good = try #require(json.first { $0["entry"]?.stringValue == "tiny" })
        #expect(good["state"] == .string("ok") && good["found"] == .null && good["users"] == .array([.string(web)]) && good["dropped"] == .array([]))
    }

    /// `-r` is refused while a VM uses the image, naming it, still after
    /// vmmv (naming the new home), and works after vmrm.
    @Test(.requires("qemu-img")) func removeIsRefusedWhileAVMUsesTheImage() throws {
        let lab = try Lab()
        let web = try lab.vm("vms/web")
        #expect(try lab.users() == [web])

        var r = try lab.run("vmimage", ["-r", "tiny"])
        #expect(r.status == 1, "\(r.err)")
        #expect(r.err.contains("ERROR: \(lab.image): used by the VM \(web) (tiny); not removed"), "\(r.err)")
        #expect(FileManager.default.fileExists(atPath: lab.image))

        let www = lab.s.url("vms/www")
        r = try lab.run("vmmv", [web, www])
        try #require(r.status == 0, "\(r.err)")
        #expect(try lab.users() == [www])
        r = try lab.run("vmimage", ["-r", lab.digest.description])
        #expect(r.status == 1 && r.err.contains("used by the VM \(www) (tiny)"), "\(r.err)")
        #expect(!r.err.contains(web + " "), "\(r.err)")

        r = try lab.run("vmrm", ["-y", www])
        try #require(r.status == 0, "\(r.err)")
        #expect(try lab.users() == [])
        r = try lab.run("vmimage", ["-r", "t"])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("\(lab.image): removed (tiny, \(lab.digest))"), "\(r.err)")
        let left = try FileManager.default.contentsOfDirectory(atPath: lab.cache.directory).filter { $0.hasPrefix(ImageCache.stem(lab.digest)) }
        #expect(left.isEmpty, "\(left)")
        #expect(lab.cache.image(lab.digest) == nil)
        r = try lab.run("vmimage", ["-r", "tiny"])
        #expect(r.status == 1 && r.err.contains("tiny: no such image in the cache"), "\(r.err)")
    }

    /// vmcp lists a copy resting on the image (not an autonomous one),
    /// vmmv moves the entry, vmrm drops it, vmfix -s re-lists a VM a plain
    /// mv took away and drops the old path; a VM not made from an image
    /// changes nothing.
    @Test(.requires("qemu-img")) func treeCommandsKeepTheUsers() throws {
        let lab = try Lab()
        let web = try lab.vm("vms/web")
        let www = lab.s.url("vms/www"), copy = lab.s.url("vms/copy"), flat = lab.s.url("vms/flat"), moved = lab.s.url("vms/moved")
        let other = try lab.run("vmcreate", ["-q", "-n", "-y", "-o", "vm_storage_hdd1_createsize=8M", "--", lab.s.url("vms/other")])
        try #require(other.status == 0, "\(other.err)")

        var r = try lab.run("vmmv", [web, www])
        try #require(r.status == 0, "\(r.err)")
        #expect(try lab.users() == [www])

        r = try lab.run("vmcp", [www, copy])
        try #require(r.status == 0, "\(r.err)")
        #expect(ImageFormat.qcow2Backing(copy + "/tiny.qcow2") == lab.image)
        #expect(try lab.users() == [copy, www])
        r = try lab.run("vmcp", ["-a", www, flat])
        try #require(r.status == 0, "\(r.err)")
        #expect(ImageFormat.qcow2Backing(flat + "/tiny.qcow2") == nil)
        #expect(try lab.users() == [copy, www], "an autonomous copy rests on nothing")
        r = try lab.run("vmmv", [lab.s.url("vms/other"), lab.s.url("vms/other2")])
        try #require(r.status == 0, "\(r.err)")
        #expect(try lab.users() == [copy, www])

        // A plain mv: the list still names the old home until vmfix -s.
        try FileManager.default.moveItem(atPath: copy, toPath: moved)
        r = try lab.run("vmfix", ["-n", "-s", moved])
        #expect(r.status == 3 && r.err.contains("\(moved): missing from the users of the cached image \(lab.image)"), "\(r.err)")
        #expect(try lab.users() == [copy, www], "-n changes nothing")
        r = try lab.run("vmfix", ["-s", moved])
        #expect(r.status == 3, "\(r.err)")
        #expect(r.err.contains("SOLVED: \(lab.image): lists \(moved) as a user again"), "\(r.err)")
        #expect(r.err.contains("SOLVED: \(lab.image): user \(copy) unregistered"), "\(r.err)")
        #expect(try lab.users() == [moved, www])
        r = try lab.run("vmfix", ["-s", moved])
        #expect(r.status == 0, "nothing left to repair: \(r.err)")

        r = try lab.run("vmrm", ["-y", www])
        try #require(r.status == 0, "\(r.err)")
        #expect(try lab.users() == [moved])
        r = try lab.run("vmrm", ["-y", "-k", moved])
        try #require(r.status == 0, "\(r.err)")
        #expect(try lab.users() == [])
        #expect(!FileManager.default.fileExists(atPath: lab.cache.usersPath(of: lab.digest)))
    }

    /// `vmmerge -c` of a VM made from an image hands the image on to its
    /// children: they record its digest and rest on it, so they are its
    /// users, and removing the image stays refused.
    @Test(.requires("qemu-img")) func aMergeHandsTheImageOnToTheChildren() throws {
        let lab = try Lab()
        let web = try lab.vm("vms/web")
        let child = lab.s.url("vms/child")
        var r = try lab.run("vmfork", ["-q", web, child])
        try #require(r.status == 0, "\(r.err)")
        #expect(try lab.users() == [web], "a fork's disk rests on its parent's, the parent is the user")
        r = try lab.run("vmmerge", ["-c", "-y", web])
        try #require(r.status == 0, "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: web))
        #expect(try lab.users() == [child])
        r = try lab.run("vmimage", ["-r", "tiny"])
        #expect(r.status == 1 && r.err.contains("used by the VM \(child) (tiny)"), "\(r.err)")
    }

    /// Killed right after journaling its rename, vmmv leaves the new home
    /// listed beside the old: a superset, never fewer. The old home still
    /// holds the VM, so removal stays refused; -c drops the stale line.
    @Test(.requires("qemu-img")) func aKilledMoveLeavesTheListASuperset() throws {
        let lab = try Lab()
        let web = try lab.vm("vms/web")
        let www = lab.s.url("vms/www")
        let r = try lab.cli.run("vmmv", [web, www], cwd: lab.s.path, env: lab.f.env.merging(["VMTOOLS_FAULT_KILL_AT_STEP": "1"]) { $1 })
        #expect(r.status != 0)
        #expect(try lab.users() == [web, www])
        let fix = try lab.run("vmfix", ["-b", lab.s.url("vms")])
        #expect(fix.status == 3 || fix.status == 0, "\(fix.err)")
        #expect(FileManager.default.fileExists(atPath: web + "/vm.settings"))
        let remove = try lab.run("vmimage", ["-r", "tiny"])
        #expect(remove.status == 1 && remove.err.contains("used by the VM \(web) (tiny)"), "\(remove.err)")
        let check = try lab.run("vmimage", ["-c"])
        #expect(check.status == 0 && check.err.contains("dropped the stale user \(www)"), "\(check.err)")
        #expect(try lab.users() == [web])
    }
}
