import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsLaunch

/// From a catalog name to an SSH session (issue 24's proof; vmcreate(1),
/// vmup(1): IMAGES BY NAME): a test server on 127.0.0.1 serves a copy of
/// the Debian 12 cloud guest with a checksum file signed by a test key; a
/// catalog entry names it by an https URL of a made-up host, which
/// cfg_images_mirror sends to the server. `vmcreate -C NAME` downloads and
/// verifies it once, `vmup -w` boots it, ssh answers; a second VM from the
/// same entry downloads nothing and shares the cached base. One boot only.
@Suite(.serialized) struct CatalogEndToEndTests {
    @Test(.requiresCloudGuest, .requires("python3", "gpg", "gpgv", "gpgconf", "curl"), .timeLimit(.minutes(20)))
    func aCatalogNameBecomesAnSSHSessionAndASecondVMDownloadsNothing() throws {
        guard let lab = try BootLab.cloud() else { return }
        let fixture = CatalogFixture(lab.s)
        let file = "debian-12-test-amd64.qcow2"
        try lab.s.mkdir("www")
        try FileManager.default.copyItem(atPath: CloudGuest.image, toPath: lab.s.url("www/" + file))
        let sums = try lab.s.write("www/SHA512SUMS", "\(try sha512(lab.s.url("www/" + file)))  \(file)\n")
        let key = try TestSigningKey(directory: lab.s.url("gpg"))
        defer { key.stop() }
        try key.detachSign(sums, to: lab.s.url("www/SHA512SUMS.sign"))
        let server = try TestImageServer(directory: lab.s.url("www"), state: lab.s.url("server"))
        defer { server.stop() }

        let remote = "https://cloud.example/images/debian-12/"
        try fixture.entry("test-debian", url: remote + file, checksums: remote + "SHA512SUMS", signature: remote + "SHA512SUMS.sign",
                          keyring: key.keyring, """
            image_user=debian
            vm_ram_size=1G
            vm_boot_kernel='\(CloudGuest.kernel)'
            vm_boot_initrd='\(CloudGuest.initrd)'
            vm_boot_append='\(CloudGuest.cmdline)'

            """)
        let env = fixture.env
        let mirror = ["-o", "cfg_images_mirror=\(remote)=\(server.base)/"]

        let web = lab.vms + "/web"
        let create = try lab.cli.run("vmcreate", ["-n", "-y"] + mirror + ["-C", "test-debian", web], env: env)
        try #require(create.status == 0, "\(create.err)")
        let downloads = server.gets(file).count
        #expect(downloads >= 1, "\(server.requests())")
        let requests = server.requests().count
        let cached = try #require(try fixture.cache.images().first, "nothing in \(fixture.cache.directory)")
        #expect(cached.entry == "test-debian")

        let up = try lab.cli.run("vmup", ["-w", web], env: env)
        try #require(up.status == 0, "\(up.err)\n\(textIfPresent(web + "/serial.log").suffix(3000))")
        let hostname = try lab.ssh(web, "web", "hostname")
        #expect(hostname.status == 0 && hostname.stdoutText == "web\n", "\(hostname.stdoutText)\(hostname.stderrText)")

        // The second VM: made from the cache alone, quickly, never booted.
        let db = lab.vms + "/db"
        let start = Date()
        let second = try lab.cli.run("vmcreate", ["-n", "-y"] + mirror + ["-C", "test-debian", db], env: env)
        let seconds = Date().timeIntervalSince(start)
        try #require(second.status == 0, "\(second.err)")
        #expect(server.requests().count == requests, "the second VM asked the server: \(server.requests().dropFirst(requests))")
        #expect(seconds < 5, "vmcreate from the cache took \(seconds) s")

        // Both disks are overlays on the one cached file.
        for home in [web, db] {
            let disk = try #require(try CatalogFixture.settings(home + "/vm.settings")[SettingKey.hdd(1).backend])
            let chain = try QemuImg.info(disk, backingChain: true, environment: ProcessInfo.processInfo.environment)
            let files = (chain.arrayValue ?? []).compactMap { $0["filename"]?.stringValue }
            #expect(files == [disk, cached.path], "\(home): \(files)")
        }
        #expect(Set(try fixture.cache.users(of: cached.digest)) == [web, db])
        let info = try lab.json(try lab.cli.run("vminfo", ["-j", db], env: env))
        let image = info.first?["image"] as? [String: String]
        #expect(image?["name"] == "test-debian" && image?["url"] == remote + file && image?["digest"] == cached.digest.description, "\(String(describing: image))")

        let down = try lab.cli.run("vmdown", [web], env: env)
        #expect(down.status == 0, "\(down.err)")
        server.stop()
        key.stop()
    }

    func sha512(_ path: String) throws -> String {
        let r = try Subprocess("/usr/bin/sha512sum", [path]).run()
        try #require(r.status == 0)
        return String(r.stdoutText.prefix(128))
    }
}
