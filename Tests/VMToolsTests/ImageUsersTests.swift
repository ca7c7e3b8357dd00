import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// The users list of a cached image (vmimage(1), CACHE): its file, its
/// lock, and which homes really rest on the image.
@Suite struct ImageUsersTests {
    static let digest = ImageDigest(.sha256, hex: String(repeating: "ab", count: 32))

    func cache(_ s: Scratch) throws -> ImageCache {
        try s.mkdir("cache/vmtools/images")
        return ImageCache(directory: s.url("cache/vmtools/images"))
    }

    @Test func listIsSortedWithoutDuplicatesPrivateAndGoneWhenEmpty() throws {
        let s = Scratch()
        let cache = try cache(s)
        try cache.addUser("/vms/b", of: Self.digest)
        try cache.addUser("/vms/a", of: Self.digest)
        try cache.addUser("/vms/b", of: Self.digest)
        let file = cache.directory + "/sha256-" + Self.digest.hex + ".users"
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "/vms/a\n/vms/b\n")
        #expect(try cache.users(of: Self.digest) == ["/vms/a", "/vms/b"])
        #expect(FileSystem.mode(file) == 0o600)
        #expect(FileSystem.mode(cache.directory + "/.lock") == 0o600)
        try cache.moveUser(from: "/vms/a", to: "/vms/c", of: Self.digest)
        #expect(try cache.users(of: Self.digest) == ["/vms/b", "/vms/c"])
        try cache.removeUser("/vms/b", of: Self.digest)
        try cache.removeUser("/vms/c", of: Self.digest)
        #expect(!FileManager.default.fileExists(atPath: file))
        #expect(try cache.users(of: ImageDigest(.sha512, hex: String(repeating: "0", count: 128))) == [])
        #expect(expectError { try cache.addUser("relative/home", of: Self.digest) } != nil)
        #expect(expectError { try cache.addUser("/a\nb", of: Self.digest) } != nil)
    }

    /// The list names homes vmimage -r trusts: a link there is refused, never followed.
    @Test func refusesALinkInPlaceOfTheListOrTheLock() throws {
        let s = Scratch()
        let cache = try cache(s)
        let elsewhere = try s.write("elsewhere", "/vms/planted\n")
        let file = cache.usersPath(of: Self.digest)
        try FileManager.default.createSymbolicLink(atPath: file, withDestinationPath: elsewhere)
        #expect(expectError { _ = try cache.users(of: Self.digest) }?.message.contains("symbolic link") == true)
        #expect(expectError { try cache.addUser("/vms/a", of: Self.digest) } != nil)
        #expect(try s.read("elsewhere") == "/vms/planted\n")
        try FileManager.default.removeItem(atPath: file)
        try? FileManager.default.removeItem(atPath: cache.directory + "/.lock")
        try FileManager.default.createSymbolicLink(atPath: cache.directory + "/.lock", withDestinationPath: s.url("lock-target"))
        #expect(expectError { try cache.addUser("/vms/a", of: Self.digest) }?.message.contains("symbolic link") == true)
        #expect(!s.exists("lock-target"))
    }

    /// Another process holding the cache's lock keeps a change waiting: the
    /// change is made once it lets go, never beside it.
    @Test(.requires("flock")) func waitsForTheCachesLock() throws {
        let s = Scratch()
        let cache = try cache(s)
        let lock = cache.directory + "/.lock", marker = s.url("released")
        let holder = try Subprocess(try #require(requireTool("flock")), [lock, "/bin/sh", "-c", "sleep 1; echo > \(marker)"]).start()
        defer { holder.terminate() }
        let held = waitUntil(10) {
            let fd = open(lock, O_RDONLY | O_CLOEXEC)
            defer { if fd >= 0 { close(fd) } }
            guard fd >= 0 else { return false }
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { flock(fd, LOCK_UN); return false }
            return true
        }
        try #require(held, "flock(1) did not take the lock")
        try cache.addUser("/vms/a", of: Self.digest)
        #expect(FileManager.default.fileExists(atPath: marker), "the change did not wait for the lock")
        #expect(try cache.users(of: Self.digest) == ["/vms/a"])
    }

    /// A home uses the image when its own settings record the digest and a
    /// disk rests on the cached file; not a flattened copy, not another digest.
    @Test(.requires("qemu-img")) func aUserRestsOnTheImageAndRecordsItsDigest() throws {
        let s = Scratch()
        let cache = try cache(s)
        let global = try resolver(s).loadGlobal()
        let base = cache.directory + "/sha256-" + Self.digest.hex + ".qcow2"
        try qemuImg(["create", "-q", "-f", "qcow2", base, "16M"])
        func home(_ name: String, digest: String?, disk: [String]?) throws -> String {
            let h = s.url(name)
            var text = "vm_name=\(name)\nvm_storage_hdd1_backend=disk.qcow2\n"
            if let digest { text += "\(SettingKey.imageDigest)=\(digest)\n" }
            try s.write(name + "/vm.settings", text)
            if let disk { try qemuImg(["create", "-q", "-f", "qcow2"] + disk.filter { $0 != "16M" } + [h + "/disk.qcow2"] + disk.filter { $0 == "16M" }) }
            return h
        }
        let user = try home("user", digest: Self.digest.description, disk: ["-F", "qcow2", "-b", base])
        let flat = try home("flat", digest: Self.digest.description, disk: ["16M"])
        let other = try home("other", digest: "sha256:" + String(repeating: "cd", count: 32), disk: ["-F", "qcow2", "-b", base])
        let plain = try home("plain", digest: nil, disk: ["-F", "qcow2", "-b", base])
        let missing = try home("missing", digest: Self.digest.description, disk: nil)
        let env = ["HOME": s.url("home")]
        #expect(cache.isUser(user, of: Self.digest, global: global, environment: env))
        #expect(ImageCache.base(of: user, digest: Self.digest, global: global, environment: env) == base)
        #expect(!cache.isUser(flat, of: Self.digest, global: global, environment: env))
        #expect(!cache.isUser(other, of: Self.digest, global: global, environment: env))
        #expect(!cache.isUser(plain, of: Self.digest, global: global, environment: env))
        #expect(ImageCache.recordedDigest(home: plain, global: global) == nil)
        // A disk that cannot be read may rest on it: never removed from under it.
        #expect(cache.isUser(missing, of: Self.digest, global: global, environment: env))
        #expect(!cache.isUser(s.url("gone"), of: Self.digest, global: global, environment: env))
        // A home vmcreate is making: listed, locked, no vm.settings yet.
        try s.mkdir("making")
        #expect(!cache.isUser(s.url("making"), of: Self.digest, global: global, environment: env))
        #expect(symlink("1234", s.url("making/" + global.fileNames.lock)) == 0)
        #expect(cache.isUser(s.url("making"), of: Self.digest, global: global, environment: env))
        // Another cache holding a file of the same name is not this one.
        try s.mkdir("other-cache")
        #expect(!ImageCache(directory: s.url("other-cache")).isUser(user, of: Self.digest, global: global, environment: env))
        for h in [user, flat, s.url("gone")] { try cache.addUser(h, of: Self.digest) }
        let checked = try cache.checkedUsers(of: Self.digest, global: global, environment: env)
        #expect(checked.live == [user] && checked.stale == [flat, s.url("gone")])
    }

    func qemuImg(_ args: [String]) throws {
        let r = try Subprocess(try #require(requireTool("qemu-img")), args).run()
        try #require(r.status == 0, "qemu-img \(args): \(r.stderrText)")
    }
}
