import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// Issue 15: `make deb` (packaging/build-deb.sh) builds a package that lintian
/// accepts, that installs with apt-get, boots the test guest from the
/// installed files alone, and purges without a trace.
///
/// The release build takes minutes, so these tests do not build the package:
/// they take the `.deb` that `make deb` left in the checkout, and fail when it
/// is missing or older than a file it is made of (Tests/setup.sh test runs
/// `make deb` first, then this suite on its own, as it installs into the
/// machine's /usr while it runs).
@Suite(.serialized) struct DebianPackageTests {
    static let commands = VMTools.commands.map { $0.spec.name }

    static var arch: String {
        (try? Subprocess("/usr/bin/dpkg", ["--print-architecture"]).run())
            .map { $0.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) } ?? "amd64"
    }

    static var debPath: String { Repo.root + "/vmtools_\(Release.version)-1_\(arch).deb" }

    /// Everything the package is made of (packaging/build-deb.sh reads these).
    static let inputs = ["Sources", "etc", "Docs", "completions", "packaging", "Package.swift", "Makefile", "CHANGELOG.md"]

    static func mtime(_ path: String) -> Double? {
        (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date)?.timeIntervalSince1970
    }

    static func newestInput() -> (path: String, time: Double) {
        var newest = ("", 0.0)
        for input in inputs {
            let top = Repo.root + "/" + input
            var paths = [top]
            if let walk = FileManager.default.enumerator(atPath: top) {
                paths += walk.compactMap { $0 as? String }.map { top + "/" + $0 }
            }
            for p in paths { if let t = mtime(p), t > newest.1 { newest = (p, t) } }
        }
        return newest
    }

    /// The package `make deb` built from these sources, or an issue.
    static func package() -> String? {
        guard let built = mtime(debPath) else {
            Issue.record("no \(debPath): run make deb first (Tests/setup.sh test does)")
            return nil
        }
        let newest = newestInput()
        guard built >= newest.time else {
            Issue.record("\(debPath) is older than \(newest.path): run make deb again")
            return nil
        }
        return debPath
    }

    /// Outside CI, a checkout without a package skips these tests.
    static var hasPackage: Bool { FileManager.default.fileExists(atPath: debPath) || Tools.ci }

    static func run(_ tool: String, _ args: [String], env: [String: String]? = nil) throws -> Subprocess.Result {
        try Subprocess(tool, args, environment: env).run()
    }

    /// dpkg-query's status of a package that is not there: nothing (never
    /// heard of) or `… not-installed` (config files purged too).
    static func absent(_ status: String) -> Bool { status.isEmpty || status.hasSuffix(" not-installed") }

    static func field(_ deb: String, _ name: String) throws -> String {
        try run("/usr/bin/dpkg-deb", ["-f", deb, name]).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    // MARK: What the package holds

    @Test(.requires("dpkg-deb"), .enabled(if: hasPackage, "no package: make deb builds it"))
    func thePackageHoldsTheBinaryLinksPagesCompletionsAndAHarmlessConffile() throws {
        guard let deb = Self.package() else { return }
        #expect(try Self.field(deb, "Package") == "vmtools")
        #expect(try Self.field(deb, "Version") == Release.version + "-1")
        #expect(try Self.field(deb, "Section") == "admin")
        #expect(try Self.field(deb, "Priority") == "optional")
        let depends = try Self.field(deb, "Depends").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(depends.contains { $0.hasPrefix("libc6 (>= ") }, "\(depends)")
        #expect(depends.contains("qemu-system-x86") && depends.contains("qemu-utils"), "\(depends)")
        #expect(try Self.field(deb, "Recommends") == "ovmf, swtpm, xorriso, curl, gpgv")
        #expect(try Self.field(deb, "Suggests") == "passt, qemu-system-gui, debian-keyring, distribution-gpg-keys, ubuntu-keyring")
        #expect(Int(try Self.field(deb, "Installed-Size")).map { $0 > 1000 } == true)

        let listing = try Self.run("/usr/bin/dpkg-deb", ["-c", deb]).stdoutText
        // `-rwxr-xr-x root/root 123 2026-… ./usr/bin/vmtools` or `… ./usr/bin/vmup -> vmtools`.
        var entries: [String: String] = [:]
        for line in listing.split(separator: "\n") {
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            guard words.count >= 6 else { continue }
            #expect(words[1] == "root/root", "\(line)")
            let path = String(words[5].dropFirst())
            entries[path] = words.count >= 8 && words[6] == "->" ? String(words[7]) : String(words[0])
        }
        #expect(entries["/usr/bin/vmtools"] == "-rwxr-xr-x")
        for c in Self.commands {
            #expect(entries["/usr/bin/\(c)"] == "vmtools", "the link \(c)")
            #expect(entries["/usr/share/man/man1/\(c).1.gz"] == "-rw-r--r--", "the page \(c).1")
            #expect(entries["/usr/share/bash-completion/completions/\(c)"] == "vmtools")
            #expect(entries["/usr/share/fish/vendor_completions.d/\(c).fish"] == "vmtools.fish")
        }
        for f in ["/usr/share/man/man1/vmtools.1.gz", "/usr/share/man/man5/vm.settings.5.gz", "/usr/share/man/man5/vmtools.conf.5.gz",
                  "/usr/share/man/man7/vmtools.7.gz", "/usr/share/bash-completion/completions/vmtools",
                  "/usr/share/fish/vendor_completions.d/vmtools.fish", "/usr/share/zsh/vendor-completions/_vmtools",
                  "/usr/share/vmtools/vmtools.conf", "/etc/vmtools/vmtools.conf",
                  "/usr/share/doc/vmtools/copyright", "/usr/share/doc/vmtools/changelog.Debian.gz"] {
            #expect(entries[f] == "-rw-r--r--", "\(f)")
        }
        let templates = try FileManager.default.contentsOfDirectory(atPath: Repo.root + "/etc/templates").filter { $0.hasSuffix(".tpl") }
        #expect(!templates.isEmpty)
        for t in templates { #expect(entries["/usr/share/vmtools/templates/\(t)"] == "-rw-r--r--", "\(t)") }
        let images = try FileManager.default.contentsOfDirectory(atPath: Repo.root + "/etc/images").filter { $0.hasSuffix(".image") }
        #expect(!images.isEmpty)
        for i in images { #expect(entries["/usr/share/vmtools/images/\(i)"] == "-rw-r--r--", "\(i)") }

        // The conffile, and as shipped it sets nothing: every line a comment.
        let scratch = Scratch()
        #expect(try Self.run("/usr/bin/dpkg-deb", ["-e", deb, scratch.url("control")]).status == 0)
        #expect(try scratch.read("control/conffiles") == "/etc/vmtools/vmtools.conf\n")
        #expect(try Self.run("/usr/bin/dpkg-deb", ["-x", deb, scratch.url("root")]).status == 0)
        let conf = try scratch.read("root/etc/vmtools/vmtools.conf")
        let settings = conf.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        #expect(settings.isEmpty, "\(settings)")
        #expect(conf.contains("#cfg_include_userhome='yes'"), "every default is there to uncomment")
        // The shipped installation layer is the checkout's, byte for byte.
        #expect(try scratch.read("root/usr/share/vmtools/vmtools.conf") == String(contentsOfFile: Repo.root + "/etc/vmtools.conf", encoding: .utf8))
    }

    @Test(.requires("lintian"), .enabled(if: hasPackage, "no package: make deb builds it"))
    func lintianFindsNoErrorsNorWarnings() throws {
        guard let deb = Self.package(), let lintian = requireTool("lintian") else { return }
        let r = try Self.run(lintian, ["--fail-on", "error,warning", "--tag-display-limit", "0", deb])
        #expect(r.status == 0, "\(r.stdoutText)\(r.stderrText)")
        #expect(!r.stdoutText.contains("E: ") && !r.stdoutText.contains("W: "), "\(r.stdoutText)")
    }

    // MARK: Installed for real

    /// Installs into the machine's /usr: root, and only in CI or when asked
    /// for by a root developer. A vmtools package already installed is never
    /// touched: the test refuses to run rather than purge it.
    @Test(.requiresGuest, .requiresRoot, .requires("dpkg-deb", "apt-get"), .enabled(if: hasPackage, "no package: make deb builds it"))
    func aptInstallsItTheInstalledFilesBootTheGuestAndPurgeLeavesNothing() throws {
        guard RuntimeFilesTests.requireRoot(), let deb = Self.package(), Guest.build() != nil,
              let aptGet = requireTool("apt-get") else { return }
        let status = try Self.run("/usr/bin/dpkg-query", ["-W", "-f=${Status}", "vmtools"]).stdoutText
        guard Self.absent(status),
              !FileManager.default.fileExists(atPath: "/usr/bin/vmtools") else {
            Issue.record("vmtools is already installed on this machine (\(status)): this test would replace and purge it")
            return
        }
        let aptEnv = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8"]
        var purged = false
        func purge() throws -> Subprocess.Result { try Self.run(aptGet, ["purge", "-y", "-q", "vmtools"], env: aptEnv) }
        defer { if !purged { _ = try? purge() } }

        let install = try Self.run(aptGet, ["install", "-y", "-q", "--no-install-recommends", deb], env: aptEnv)
        try #require(install.status == 0, "\(install.stdoutText)\(install.stderrText)")
        let owned = try Self.run("/usr/bin/dpkg", ["-L", "vmtools"]).stdoutText.split(separator: "\n").map(String.init)
        for c in Self.commands { #expect(owned.contains("/usr/bin/\(c)"), "\(c)") }
        #expect(owned.contains("/etc/vmtools/vmtools.conf"))

        // The installed binary, with nothing of the checkout: no VMTOOLS_*,
        // so it reads /usr/share/vmtools and /etc/vmtools.
        let s = Scratch()
        let cli = try CLI(s)
        try s.mkdir("run")
        #expect(chmod(s.url("run"), 0o700) == 0)
        let env = ["HOME": s.url("home"), "XDG_CONFIG_HOME": s.url("xdg"), "XDG_RUNTIME_DIR": s.url("run"),
                   "PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"]
        let help = try #require(try cli.run("/usr/bin/vmup", ["-h"], environment: env, within: 30))
        #expect(help.status == 0 && help.out.contains("Usage: vmup"), "\(help.out)\(help.err)")
        let templates = try #require(try cli.run("/usr/bin/vmtools", ["--list", "templates"], environment: env, within: 30))
        #expect(templates.outLines.contains("headless"), "the installed templates: \(templates.out)\(templates.err)")

        // A headless demo boot: a bare ISO in the background (its pid file
        // in its run-time directory, vmup(1)); a bare boot keeps no serial
        // log, so the test asks QEMU for one.
        let iso = s.url("deb-demo.iso")
        try FileManager.default.copyItem(atPath: Guest.iso, toPath: iso)
        let log = s.url("serial.log")
        let up = try #require(try cli.run("/usr/bin/vmup", ["-y", "-o", "vm_display_type=none", "-o", "vm_qemu_params=-serial file:\(log)",
                                                           "-o", "vm_ram_size=128M", iso], environment: env, within: 120))
        let runDir = s.url("run/vmtools")
        let bare = { RuntimeFilesTests.entries(runDir).first { $0.hasPrefix("bare-") }.map { runDir + "/" + $0 } }
        let pid = bare().flatMap { Int32(RuntimeFilesTests.text($0 + "/qemu.pid").trimmingCharacters(in: .whitespacesAndNewlines)) }
        defer { if let pid, QemuProcess.read(pid: pid) != nil { kill(pid, SIGKILL) } }
        try #require(up.status == 0, "\(up.out)\(up.err)")
        let qemu = try #require(pid, "no pid file in \(runDir): \(RuntimeFilesTests.entries(runDir))")
        #expect(waitUntil(120) { RuntimeFilesTests.text(log).contains("VMTOOLS-GUEST: READY") }, "\(RuntimeFilesTests.text(log))")
        let down = try #require(try cli.run("/usr/bin/vmdown", ["-w", "-p", String(qemu)], environment: env, within: 120))
        #expect(down.status == 0, "\(down.out)\(down.err)")
        #expect(waitUntil(10) { QemuProcess.read(pid: qemu) == nil })
        #expect(bare() == nil, "the run-time directory is removed")

        // Purge: every file of the package, /etc/vmtools included, is gone.
        let r = try purge()
        purged = true
        #expect(r.status == 0, "\(r.stdoutText)\(r.stderrText)")
        let after = try Self.run("/usr/bin/dpkg-query", ["-W", "-f=${Status}", "vmtools"]).stdoutText
        #expect(Self.absent(after), "\(after)")
        var st = stat()
        let left = owned.filter { lstat($0, &st) == 0 && (st.st_mode & S_IFMT) != S_IFDIR }
        #expect(left.isEmpty, "left after purge: \(left)")
        for dir in ["/etc/vmtools", "/usr/share/vmtools", "/usr/share/doc/vmtools", "/usr/share/zsh/vendor-completions/_vmtools"] {
            #expect(!FileManager.default.fileExists(atPath: dir), "\(dir) is left after purge")
        }
    }
}
