import Foundation
import Testing
@testable import VMToolsCore

/// The image catalog (vmtools(7), IMAGE CATALOG): the shipped entries are
/// well formed and verifiable, the three layers replace each other by file
/// name, aliases resolve, every malformed entry is a one-line `file:line`
/// error, and `cfg_images_mirror` rewrites URL prefixes.
@Suite struct ImageCatalogTests {
    /// A well-formed cloud entry, to break one line at a time.
    static let good = """
        # a test entry
        image_kind='cloud'
        image_url_x86_64='https://example.org/images/test-amd64.qcow2'
        image_checksums_x86_64='https://example.org/images/SHA256SUMS'
        image_user='debian'
        vm_storage_hdd1_size='20G'
        vm_firmware='uefi'

        """

    func parse(_ text: String, name: String = "test", known: Set<String> = []) throws -> ImageEntry {
        try ImageEntry.parse(text, name: name, file: "/c/test.image", knownSettings: known)
    }

    /// The catalog of the checkout alone: its `etc/images`, no system or user layer.
    func shipped(_ s: Scratch) -> ImageCatalog {
        ImageCatalog(paths: SystemPaths(dataDir: Repo.root + "/etc", sysconfDir: s.url("etc"), userDir: s.url("user")), includeUser: false)
    }

    // MARK: the shipped entries

    @Test func everyShippedEntryIsWellFormedAndVerifiable() throws {
        let s = Scratch()
        let entries = try shipped(s).entries()
        #expect(entries.count >= 14)
        for e in entries {
            let url = try #require(e.url(for: "x86_64"), "\(e.name): no x86_64 URL")
            #expect(url.hasPrefix("https://"), "\(e.name): \(url)")
            #expect(e.hasVerification("x86_64"), "\(e.name): nothing to verify the image with")
            #expect(!e.needsPlainHTTPNotice("x86_64"), "\(e.name)")
            #expect(e.imageFileName("x86_64").map { !$0.isEmpty } == true, "\(e.name)")
            for arch in e.architecturesWithURL {
                #expect(e.urls[arch]?.hasPrefix("https://") == true && e.hasVerification(arch), "\(e.name) \(arch)")
                for u in [e.checksums[arch], e.signatures[arch]].compactMap({ $0 }) { #expect(u.hasPrefix("https://"), "\(e.name): \(u)") }
            }
            if let k = e.keyring { #expect(k.hasPrefix("/usr/share/"), "\(e.name): \(k)") }
            // Each entry says where its URLs come from.
            let text = try String(contentsOfFile: e.file, encoding: .utf8)
            #expect(text.contains("URLs"), "\(e.name): no comment on where the URLs come from")
        }
        let names = Set(entries.map(\.name))
        for n in ["debian-12", "debian-13", "ubuntu-22.04", "ubuntu-24.04", "fedora-44", "almalinux-9", "rocky-9",
                  "centos-stream-9", "opensuse-leap-16.0", "archlinux", "alpine-3.23", "debian-13-netinst", "fedora-server"] {
            #expect(names.contains(n), "\(n) is not shipped")
        }
        #expect(entries.first { $0.name == "debian-13-netinst" }?.kind == .iso)
        #expect(entries.first { $0.name == "fedora-server" }?.kind == .iso)
        #expect(entries.first { $0.name == "alpine-3.23" }?.settings.contains { $0 == (SettingKey.firmware, "uefi") } == true)
        // The short names are the current releases, and no two entries claim one.
        let aliases = try shipped(s).aliases()
        #expect(aliases["debian"] == "debian-13")
        #expect(aliases["ubuntu"] == "ubuntu-26.04")
        #expect(aliases["fedora"] == "fedora-44")
        #expect(aliases["alpine"] == "alpine-3.23")
        #expect(try shipped(s).require("debian").name == "debian-13")
        #expect(entries.flatMap(\.aliases).count == aliases.count)
    }

    /// A signed checksum file names a keyring; Fedora's clear-signed one has no signature URL.
    @Test func signedEntriesNameTheirKeyring() throws {
        let c = shipped(Scratch())
        let ubuntu = try c.require("ubuntu-24.04")
        #expect(ubuntu.isSigned("x86_64") && ubuntu.signatures["x86_64"]?.hasSuffix("/SHA256SUMS.gpg") == true)
        #expect(ubuntu.keyring == "/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg")
        let fedora = try c.require("fedora")
        #expect(fedora.isSigned("x86_64") && fedora.signatures["x86_64"] == nil)
        let netinst = try c.require("debian-netinst")
        #expect(netinst.name == "debian-13-netinst" && netinst.keyring == "/usr/share/keyrings/debian-role-keys.gpg")
        #expect(netinst.imageFileName("x86_64") == "debian-13.6.0-amd64-netinst.iso")
    }

    // MARK: parsing

    @Test func aWellFormedEntryParses() throws {
        let e = try parse(Self.good + "image_aliases='t tt'\nimage_url_aarch64=\"https://example.org/a/arm64.qcow2?x=1\"\nimage_digest_aarch64='sha256:\(String(repeating: "AB", count: 32))'\n")
        #expect(e.kind == .cloud && e.name == "test" && e.file == "/c/test.image")
        #expect(e.url(for: "x86_64") == "https://example.org/images/test-amd64.qcow2")
        #expect(e.imageFileName("x86_64") == "test-amd64.qcow2")
        #expect(e.imageFileName("aarch64") == "arm64.qcow2")
        #expect(e.checksums == ["x86_64": "https://example.org/images/SHA256SUMS"])
        #expect(e.digests["aarch64"]?.description == "sha256:" + String(repeating: "ab", count: 32))
        #expect(e.hasVerification("x86_64") && e.hasVerification("aarch64") && !e.isSigned("x86_64"))
        #expect(e.user == "debian" && e.aliases == ["t", "tt"] && e.keyring == nil)
        #expect(e.settings.map(\.name) == ["vm_storage_hdd1_size", "vm_firmware"])
        #expect(e.settings.map(\.value) == ["20G", "uefi"])
        #expect(e.architecturesWithURL == ["x86_64", "aarch64"])
        #expect(e.url(for: "riscv64") == nil && !e.hasVerification("riscv64"))
    }

    /// Plain http:// is accepted only where a digest or a signed checksum file vouches for the bytes.
    @Test func plainHTTPNeedsADigestOrASignedChecksumFile() throws {
        let digest = "image_digest_x86_64='sha512:\(String(repeating: "0", count: 128))'\n"
        let pinned = try parse("image_kind='iso'\nimage_url_x86_64='http://example.org/x.iso'\n" + digest)
        #expect(pinned.needsPlainHTTPNotice("x86_64") && pinned.hasVerification("x86_64"))
        let signed = try parse("""
            image_kind='iso'
            image_url_x86_64='http://example.org/x.iso'
            image_checksums_x86_64='http://example.org/SUMS'
            image_signature_x86_64='http://example.org/SUMS.sig'
            image_keyring='/usr/share/keyrings/k.gpg'

            """)
        #expect(signed.needsPlainHTTPNotice("x86_64") && signed.isSigned("x86_64"))
        let clearSigned = try parse("image_kind='iso'\nimage_url_x86_64='http://example.org/x.iso'\nimage_checksums_x86_64='https://example.org/SUMS'\nimage_keyring='/k.gpg'\n")
        #expect(clearSigned.isSigned("x86_64") && clearSigned.signatures.isEmpty)
        // An entry with nothing to verify parses: cfg_images_unverified decides at download.
        let bare = try parse("image_kind='iso'\nimage_url_x86_64='https://example.org/x.iso'\n")
        #expect(!bare.hasVerification("x86_64") && !bare.needsPlainHTTPNotice("x86_64"))
    }

    /// Every malformed entry is refused with one line naming the file and line.
    @Test(arguments: [
        ("image_kind='disk'\n", 2, "image_kind: 'disk': expected cloud or iso"),
        ("image_colour='red'\n", 8, "image_colour: unknown key"),
        ("image_url_riscv64='https://example.org/r.img'\n", 8, "image_url_riscv64: unknown key"),
        ("IFS=x\n", 8, "'IFS': unknown key"),
        ("image_digest_x86_64='sha256:abc'\n", 8, "image_digest_x86_64: 'sha256:abc': expected sha256:HEX"),
        ("image_digest_x86_64='md5:\(String(repeating: "0", count: 32))'\n", 8, "expected sha256:HEX"),
        ("cfg_images_unverified='yes'\n", 8, "cfg_images_unverified: a catalog entry must not change the configuration"),
        ("vm_no_such_thing='1'\n", 8, "vm_no_such_thing: unknown setting"),
        ("vm_name='web'\n", 8, "vm_name: a VM's name and home come from its directory"),
        ("vm_image_digest='sha256:00'\n", 8, "vm_image_digest: recorded by vmcreate"),
        ("vm_ram_size=\"$vm_cpu_count\"\n", 8, "vm_ram_size: '$vm_cpu_count' is not expanded in a catalog entry"),
        ("image_url_aarch64='ftp://example.org/x.qcow2'\n", 8, "image_url_aarch64: 'ftp://example.org/x.qcow2': expected an https:// URL"),
        ("image_url_aarch64='https://example.org/'\n", 8, "the URL's path must end with a file name"),
        ("image_url_aarch64='https://example.org/a b.img'\n", 8, "a URL is printable ASCII without blanks"),
        ("image_url_aarch64='http://example.org/a.img'\nimage_checksums_aarch64='https://example.org/S'\n", 8,
         "image_url_aarch64: a plain http:// URL needs image_digest_aarch64 or a signed checksum file"),
        ("image_keyring='keys/k.gpg'\n", 8, "image_keyring: 'keys/k.gpg': expected the absolute path"),
        ("image_keyring='/k\u{1b}[2J.gpg'\n", 8, "image_keyring: '/k\\e[2J.gpg': expected the absolute path"),
        ("image_signature_x86_64='https://example.org/SUMS.gpg'\n", 8, "image_signature_x86_64 without image_keyring"),
        ("image_digest_aarch64='sha256:\(String(repeating: "0", count: 64))'\n", 8, "image_digest_aarch64 without image_url_aarch64"),
        ("image_user='Root User'\n", 5, "image_user: 'Root User': expected a login name"),
        ("image_aliases='Debian'\n", 8, "image_aliases: 'Debian': not a valid entry name"),
        ("image_aliases='test'\n", 8, "image_aliases: 'test' is given twice or is the entry's own name"),
        ("image_user='ubuntu'\n", 8, "image_user is set twice (first on line 5)"),
        ("template modern\n", 8, "'template' lines do not belong in a catalog entry"),
        ("echo $(id)\n", 8, "command substitution $(…) needs a shell"),
        ("rm -rf /\n", 8, "'rm' is a shell command, not a NAME=VALUE assignment"),
    ] as [(String, Int, String)])
    func malformedEntriesAreOneLineErrors(_ extra: String, _ line: Int, _ message: String) throws {
        // Line 8 is added after the good entry; an earlier line replaces that line of it.
        var lines = Self.good.components(separatedBy: "\n")
        if line < 8 { lines[line - 1] = String(extra.dropLast()) } else { lines.insert(String(extra.dropLast()), at: 7) }
        let e = try #require(expectError { _ = try parse(lines.joined(separator: "\n")) })
        #expect(e.subject == "/c/test.image:\(line)")
        #expect(e.message.contains(message), "\(e.message)")
        #expect(!e.description.contains("\n"))
    }

    @Test func missingKeysAreReportedAtLineOne() throws {
        #expect(expectError { _ = try parse("image_url_x86_64='https://e.org/a.img'\n") }?.description
            == "/c/test.image:1: image_kind is missing (cloud or iso)")
        #expect(expectError { _ = try parse("image_kind='iso'\nimage_url_aarch64='https://e.org/a.img'\n") }?.description
            == "/c/test.image:1: image_url_x86_64 is missing")
        #expect(expectError { _ = try parse("image_kind='iso'\nimage_url_x86_64='https://e.org/a.img'\nimage_keyring='/k.gpg'\n") }?.description
            == "/c/test.image:3: image_keyring without an image_checksums_ARCH file to check")
    }

    /// Names a vmtools.conf defines may be set, as with `-o`; numbered drive and NIC settings always.
    @Test func settingsMayBeAnyKnownName() throws {
        #expect(throws: VMToolsError.self) { try parse(Self.good + "vm_site_rack='4'\n") }
        #expect(try parse(Self.good + "vm_site_rack='4'\n", known: ["vm_site_rack"]).settings.last?.value == "4")
        let e = try parse(Self.good + "vm_storage_hdd7_createsize='1G'\nvm_networking_iface3_enable='yes'\n")
        #expect(e.settings.suffix(2).map(\.name) == ["vm_storage_hdd7_createsize", "vm_networking_iface3_enable"])
    }

    @Test func anOversizedOrBinaryFileIsRefused() throws {
        let s = Scratch()
        let big = try s.write("share/images/big.image", Self.good + "#" + String(repeating: "x", count: ImageEntry.maximumSize) + "\n")
        #expect(expectError { _ = try ImageEntry.read(big, name: "big") }?.description == "\(big): file is too large (more than 64 KiB)")
        #expect(expectError { _ = try parse(Self.good + "#" + String(repeating: "x", count: ImageEntry.maximumSize)) }?.message
            .hasPrefix("file is too large (more than 64 KiB)") == true)
        let nul = try s.writeBytes("share/images/nul.image", Array("image_kind='cloud'\n\0\n".utf8))
        #expect(expectError { _ = try ImageEntry.read(nul, name: "nul") }?.description == "\(nul):2: contains a NUL byte; settings files are text")
    }

    // MARK: layers, aliases, errors

    @Test func laterLayersReplaceEarlierOnesByFileName() throws {
        let s = Scratch()
        func entry(_ user: String) -> String { Self.good.replacingOccurrences(of: "image_user='debian'", with: "image_user='\(user)'") }
        try s.write("share/images/web.image", entry("share"))
        try s.write("share/images/only-share.image", entry("share"))
        try s.write("etc/images/web.image", entry("etc"))
        try s.write("user/vmtools/images/web.image", entry("user"))
        try s.write("user/vmtools/images/mine.image", entry("user"))
        var c = ImageCatalog(paths: s.paths, includeUser: true)
        #expect(c.directories == [s.url("share/images"), s.url("etc/images"), s.url("user/vmtools/images")])
        #expect(try c.require("web").user == "user")
        #expect(try c.require("web").file == s.url("user/vmtools/images/web.image"))
        #expect(try c.entries().map(\.name) == ["mine", "only-share", "web"])
        #expect(try c.entries().map { $0.user ?? "" } == ["user", "share", "user"])
        c.includeUser = false
        #expect(try c.require("web").user == "etc")
        #expect(try c.entry(named: "mine") == nil)
        #expect(c.names() == ["only-share", "web"])
        try FileManager.default.removeItem(atPath: s.url("etc/images/web.image"))
        #expect(try c.require("web").user == "share")
    }

    /// Files that cannot name an entry are not entries: an editor's backup, a README.
    @Test func filesThatAreNoEntryNameAreIgnored() throws {
        let s = Scratch()
        try s.write("share/images/ok.image", Self.good)
        try s.write("share/images/Upper.image", "garbage")
        try s.write("share/images/.hidden.image", "garbage")
        try s.write("share/images/README", "garbage")
        try s.write("share/images/ok.image~", "garbage")
        try s.mkdir("share/images/dir.image")
        let c = ImageCatalog(paths: s.paths, includeUser: true)
        #expect(try c.entries().map(\.name) == ["ok"])
        #expect(try c.entry(named: "Upper") == nil)
    }

    /// A real name wins over an alias; of two claims, the later layer's; in one layer, an error.
    @Test func aliasesResolveAndCollisionsAreDecided() throws {
        let s = Scratch()
        func entry(_ aliases: String) -> String { Self.good + "image_aliases='\(aliases)'\n" }
        try s.write("share/images/distro-1.image", entry("distro old"))
        try s.write("share/images/distro-2.image", entry("distro-latest"))
        try s.write("share/images/old.image", Self.good)
        var c = ImageCatalog(paths: s.paths, includeUser: true)
        #expect(try c.require("distro").name == "distro-1")
        #expect(try c.require("old").name == "old")
        #expect(try c.aliases() == ["distro": "distro-1", "distro-latest": "distro-2"])
        try s.write("user/vmtools/images/distro-3.image", entry("distro"))
        #expect(try c.require("distro").name == "distro-3")
        c.includeUser = false
        #expect(try c.require("distro").name == "distro-1")
        try s.write("share/images/distro-0.image", entry("distro"))
        let e = try #require(expectError { _ = try c.require("distro") })
        #expect(e.description == "'image distro': the alias is claimed by both \(s.url("share/images/distro-0.image")) and \(s.url("share/images/distro-1.image")); remove it from one")
    }

    @Test func notFoundNamesWhereItLooked() throws {
        let s = Scratch()
        var c = ImageCatalog(paths: s.paths, includeUser: true)
        #expect(try c.entry(named: "nothing") == nil)
        let dirs = "\(s.url("share/images")), \(s.url("etc/images")), \(s.url("user/vmtools/images"))"
        #expect(expectError { _ = try c.require("nothing") }?.description
            == "'image nothing': not found (looked for nothing.image and for an entry with that alias in \(dirs))")
        try s.write("user/vmtools/images/nothing.image", Self.good)
        c.includeUser = false
        c.userOff = "cfg_include_userhome is 'no' (set by /etc/vmtools/vmtools.conf:3)"
        #expect(expectError { _ = try c.require("nothing") }?.description
            == "'image nothing': not found (looked for nothing.image and for an entry with that alias in \(s.url("share/images")), \(s.url("etc/images")); \(s.url("user/vmtools/images/nothing.image")) is not searched: cfg_include_userhome is 'no' (set by /etc/vmtools/vmtools.conf:3))")
        #expect(expectError { _ = try c.require("../x") }?.description
            == "'image ../x': invalid image name (lower-case letters, digits, '.', '-' and '_', starting with a letter or digit)")
        // A broken entry is its own error, not "not found".
        try s.write("etc/images/broken.image", "image_kind='vm'\n")
        #expect(expectError { _ = try c.require("broken") }?.description == "\(s.url("etc/images/broken.image")):1: image_kind: 'vm': expected cloud or iso")
    }

    /// The global configuration picks the layers, the user's switch and the names it defines.
    @Test func theCatalogOfAConfiguration() throws {
        let s = Scratch()
        try s.write("etc/vmtools.conf", "cfg_include_userhome='no'\nvm_site_rack=''\n")
        try s.write("etc/images/rack.image", Self.good + "vm_site_rack='4'\n")
        let c = ImageCatalog(try resolver(s).loadGlobal())
        #expect(!c.includeUser && c.userOff?.contains("/etc/vmtools.conf:1") == true)
        #expect(try c.require("rack").settings.last?.value == "4")
    }

    // MARK: keyrings

    /// An armored keyring decodes to its packets, block after block, with
    /// headers, CRC line and CRLF line ends; a binary one is left alone.
    @Test func armoredKeyringsDecodeToTheirPackets() throws {
        let a = (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }, b: [UInt8] = [0x99, 0x01, 0x0d, 0x04]
        func armor(_ bytes: [UInt8], crlf: Bool = false) -> String {
            let b64 = Data(bytes).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
            let text = "-----BEGIN PGP PUBLIC KEY BLOCK-----\nComment: test key\n\n\(b64)\n=AbCd\n-----END PGP PUBLIC KEY BLOCK-----\n"
            return crlf ? text.replacingOccurrences(of: "\n", with: "\r\n") : text
        }
        #expect(OpenPGPArmor.dearmor(Array(armor(a).utf8)) == a)
        #expect(OpenPGPArmor.dearmor(Array(("\n" + armor(a, crlf: true) + armor(b)).utf8)) == a + b)
        #expect(OpenPGPArmor.isArmored(Array(armor(b).utf8)) && !OpenPGPArmor.isArmored(b))
        #expect(OpenPGPArmor.dearmor(b) == nil)
        #expect(OpenPGPArmor.dearmor(Array(armor(a).utf8.dropLast(40))) == nil)
        #expect(OpenPGPArmor.dearmor(Array("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n*not base64*\n-----END PGP PUBLIC KEY BLOCK-----\n".utf8)) == nil)
    }

    /// gpgv refuses an armored keyring and accepts its dearmored packets:
    /// how a clear-signed checksum file checks against distribution-gpg-keys' key files.
    @Test(.requires("gpg", "gpgv", "gpgconf")) func gpgvChecksWithADearmoredKeyring() throws {
        let s = Scratch()
        try s.mkdir("gnupg")
        chmod(s.url("gnupg"), 0o700)
        let env = ["GNUPGHOME": s.url("gnupg"), "PATH": "/usr/bin:/bin"]
        func gpg(_ args: [String]) throws -> Subprocess.Result {
            try Subprocess(requireTool("gpg") ?? "gpg", ["--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""] + args, environment: env).run()
        }
        // The agent gpg starts for this home is stopped by gpgconf, for this home only.
        defer { _ = try? Subprocess(requireTool("gpgconf") ?? "gpgconf", ["--kill", "all"], environment: env).run() }
        #expect(try gpg(["--quick-gen-key", "vmtools-test@example.org", "ed25519", "sign", "never"]).status == 0)
        try s.write("SUMS", "\(String(repeating: "0", count: 64))  image.qcow2\n")
        #expect(try gpg(["--clearsign", "--output", s.url("SUMS.asc"), s.url("SUMS")]).status == 0)
        let armored = try gpg(["--export", "--armor"]).stdout
        try s.writeBytes("key.asc", armored)
        try s.writeBytes("key.gpg", try #require(OpenPGPArmor.dearmor(armored)))
        let gpgv = requireTool("gpgv") ?? "gpgv"
        #expect(try Subprocess(gpgv, ["--keyring", s.url("key.asc"), s.url("SUMS.asc")], environment: env).run().status != 0)
        let good = try Subprocess(gpgv, ["--keyring", s.url("key.gpg"), s.url("SUMS.asc")], environment: env).run()
        #expect(good.status == 0, "\(good.stderrText)")
    }

    // MARK: cfg_images_mirror

    @Test func mirrorRulesRewriteTheLongestPrefix() throws {
        let m = try ImageMirror("https://cloud.debian.org/=http://127.0.0.1:8080/debian/  https://cloud.debian.org/images/cloud/trixie/=http://127.0.0.1:8080/trixie/\thttps://e.org=https://f.org")
        #expect(m.rules.count == 3)
        #expect(m.rewrite("https://cloud.debian.org/images/cloud/trixie/latest/SHA512SUMS") == "http://127.0.0.1:8080/trixie/latest/SHA512SUMS")
        #expect(m.rewrite("https://cloud.debian.org/images/cloud/bookworm/latest/x.qcow2") == "http://127.0.0.1:8080/debian/images/cloud/bookworm/latest/x.qcow2")
        #expect(m.rewrite("https://e.org.example/x") == "https://f.org.example/x")  // a plain text prefix
        #expect(m.rewrite("https://cloud-images.ubuntu.com/x.img") == "https://cloud-images.ubuntu.com/x.img")
        #expect(try ImageMirror("") == ImageMirror())
        #expect(ImageMirror().rewrite("https://a.org/b") == "https://a.org/b")
    }

    @Test(arguments: [
        ("https://a.org/", "cfg_images_mirror: 'https://a.org/': expected FROM=TO (two URL prefixes)"),
        ("https://a.org/=", "cfg_images_mirror: 'https://a.org/=': TO must be an http:// or https:// URL prefix"),
        ("=https://b.org/", "cfg_images_mirror: '=https://b.org/': FROM must be an http:// or https:// URL prefix"),
        ("https://a.org/=/srv/mirror/", "cfg_images_mirror: 'https://a.org/=/srv/mirror/': TO must be an http:// or https:// URL prefix"),
        ("https://a.org/=https://b.org/ https://a.org/=https://c.org/", "cfg_images_mirror: 'https://a.org/=https://c.org/': https://a.org/ is rewritten twice"),
    ])
    func malformedMirrorRulesNameTheSetting(_ value: String, _ message: String) throws {
        #expect(expectError { _ = try ImageMirror(value) }?.description == message)
    }
}
