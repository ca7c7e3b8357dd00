import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// What a newcomer follows: the README's two commands, the packages they
/// install, completions under a prefix of their own.
@Suite struct NewcomerTests {
    static func read(_ rel: String) throws -> String {
        try String(contentsOfFile: Repo.root + "/" + rel, encoding: .utf8)
    }

    /// The package names of `packages=(…)` and `packages+=(…)` in Tests/setup.sh.
    static func setupPackages() throws -> Set<String> {
        var names = Set<String>()
        for line in try read("Tests/setup.sh").split(separator: "\n") {
            let t = line.trimmingCharacters(in: .whitespaces)
            guard t.hasPrefix("packages=(") || t.hasPrefix("packages+=("), let open = t.firstIndex(of: "("),
                  let close = t.firstIndex(of: ")") else { continue }
            names.formUnion(t[t.index(after: open)..<close].split(separator: " ").map(String.init))
        }
        return names
    }

    @Test func theReadmesTwoCommandsSetUpEverythingAndCIRunsTheSecond() throws {
        let readme = try Self.read("README.md")
        #expect(readme.contains("bash Tests/setup.sh demo"))
        #expect(readme.contains("bash Tests/setup.sh test"))
        let ci = try Self.read(".ci/run")
        #expect(ci.contains("bash Tests/setup.sh test"), ".ci/run must run the README's second command")
        let setup = try Self.read("Tests/setup.sh")
        #expect(setup.contains("apt-get install") && setup.contains("sudo"), "setup.sh installs, through sudo when not root")
        #expect(setup.contains("swift test") && setup.contains("vmup -i"))
        #expect(try Self.setupPackages().isSuperset(of: ["qemu-system-x86", "qemu-utils", "xorriso"]))
    }

    /// Every tool a test asks for with `requireTool` or `.requires` comes from a package
    /// that `Tests/setup.sh` installs (or one every Debian system has).
    @Test(.requires("dpkg")) func setupInstallsEveryToolTheTestsAskFor() throws {
        guard let dpkg = requireTool("dpkg") else { return }
        let installed = try Self.setupPackages()
        var tools = Set<String>()
        let dir = Repo.root + "/Tests/VMToolsTests"
        for f in try FileManager.default.contentsOfDirectory(atPath: dir) where f.hasSuffix(".swift") {
            let text = try String(contentsOfFile: dir + "/" + f, encoding: .utf8)
            var rest = Substring(text)
            while let r = rest.range(of: "requireTool(\"") {
                rest = rest[r.upperBound...]
                if let q = rest.firstIndex(of: "\"") { tools.insert(String(rest[..<q])) }
            }
            // `.requires("a", "b")`: every quoted word up to the closing parenthesis.
            rest = Substring(text)
            while let r = rest.range(of: ".requires(\"") {
                rest = rest[rest.index(before: r.upperBound)...]
                let list = rest.prefix { $0 != ")" }
                tools.formUnion(list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                    .filter { $0.hasPrefix("\"") && $0.hasSuffix("\"") && $0.count > 2 }.map { String($0.dropFirst().dropLast()) })
                rest = rest.dropFirst(list.count)
            }
        }
        #expect(tools.isSuperset(of: ["qemu-img", "qemu-io", "xorriso", "setpriv"]), "\(tools.sorted())")
        #expect(tools.contains("qemu-system-x86_64"))
        for tool in tools.sorted() {
            // A tool missing here is a skip of the tests that need it, not this test's business.
            guard let path = Tools.path(tool) else { continue }
            // dpkg knows a file by the path its package ships (/usr/bin or /bin).
            var owner: String?
            for p in [path, "/usr/bin/" + tool, "/bin/" + tool, "/usr/sbin/" + tool, "/sbin/" + tool] {
                let r = try Subprocess(dpkg, ["-S", p]).run()
                if r.status == 0 { owner = r.stdoutText.split(separator: ":").first.map(String.init); break }
            }
            guard let owner else { Issue.record("\(tool): no Debian package ships \(path)"); continue }
            let essential = try Subprocess("/usr/bin/dpkg-query", ["-W", "-f=${Essential}", owner]).run().stdoutText == "yes"
            #expect(installed.contains(owner) || essential, "\(tool) comes from \(owner), which Tests/setup.sh does not install")
        }
    }

    /// A suite is found by its name: `@Suite struct XTests` lives in
    /// XTests.swift, one suite a file.
    @Test func everySuiteLivesInAFileNamedAfterIt() throws {
        let dir = Repo.root + "/Tests/VMToolsTests"
        var suites = 0
        for f in try FileManager.default.contentsOfDirectory(atPath: dir).sorted() where f.hasSuffix(".swift") {
            for line in try String(contentsOfFile: dir + "/" + f, encoding: .utf8).split(separator: "\n") where line.hasPrefix("@Suite") {
                let words = line.split(separator: " ")
                guard let kind = words.firstIndex(where: { $0 == "struct" || $0 == "class" }), kind + 1 < words.count else {
                    Issue.record("\(f): cannot read the suite's name in: \(line)")
                    continue
                }
                suites += 1
                #expect(f == words[kind + 1] + ".swift", "suite \(words[kind + 1]) lives in \(f)")
            }
        }
        #expect(suites > 30)
    }

    /// A test that asks for a tool, the guest or root carries the trait that
    /// skips it where they are missing (outside CI): a bare `requireTool`
    /// would fail there instead of reporting a skip.
    @Test func everyTestThatNeedsAToolCarriesItsTrait() throws {
        let dir = Repo.root + "/Tests/VMToolsTests"
        let needs = ["requireTool(\"": ".requires", "BootLab.guest(": ".requiresGuest", "Guest.build()": ".requiresGuest",
                     "requireRoot()": ".requiresRoot", "try tree()": ".requires(\"qemu-img\", \"qemu-io\")",
                     "CloudGuest.build()": ".requiresCloudGuest", "BootLab.cloud(": ".requiresCloudGuest"]
        let declaration = ["@Test", "///", "func ", "static ", "var ", "let ", "struct ", "final ", "enum ", "init", "@discardableResult"]
        var checked = 0
        for f in try FileManager.default.contentsOfDirectory(atPath: dir).sorted() where f.hasSuffix(".swift") {
            let lines = try String(contentsOfFile: dir + "/" + f, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            var i = 0
            while i < lines.count {
                guard lines[i].hasPrefix("    @Test") else { i += 1; continue }
                // The test runs from its attribute to the next declaration
                // of the suite, once its own `func` line has passed.
                var attribute = String(lines[i]), end = i + 1, seenFunc = lines[i].contains(" func ")
                while end < lines.count, !lines[end].hasPrefix("}") {
                    let member = lines[end].hasPrefix("    ") && !lines[end].hasPrefix("     ")
                    if member, declaration.contains(where: { lines[end].dropFirst(4).hasPrefix($0) }) {
                        guard !seenFunc else { break }
                        seenFunc = lines[end].contains("func ")
                    }
                    if !seenFunc { attribute += lines[end] }
                    end += 1
                }
                let body = lines[i..<end].joined(separator: "\n")
                // This test names the uses it looks for.
                for (use, trait) in needs where body.contains(use) && !body.contains("func everyTestThatNeedsAToolCarriesItsTrait") {
                    checked += 1
                    // A test of the cloud guest needs that guest's trait instead.
                    let carried = attribute.contains(trait) || (trait == ".requiresGuest" && attribute.contains(".requiresCloudGuest"))
                    #expect(carried, "\(f):\(i + 1): the test uses \(use) but lacks \(trait)")
                }
                i = end
            }
        }
        #expect(checked > 50)
    }

    /// README: bash-completion finds completions under another PREFIX through
    /// XDG_DATA_DIRS, laid out as `make install` lays them out.
    @Test(.requires("bash")) func bashFindsCompletionsUnderAnotherPrefixThroughXdgDataDirs() throws {
        guard requireTool("bash") != nil else { return }
        try #require(FileManager.default.fileExists(atPath: "/usr/share/bash-completion/bash_completion"),
                     "bash-completion is not installed (bash Tests/setup.sh test installs it)")
        let s = Scratch()
        let dir = s.url("opt/share/bash-completion/completions")
        try s.mkdir("opt/share/bash-completion/completions")
        try FileManager.default.copyItem(atPath: Repo.root + "/completions/vmtools.bash", toPath: dir + "/vmtools")
        try FileManager.default.createSymbolicLink(atPath: dir + "/vmup", withDestinationPath: "vmtools")
        let script = "source /usr/share/bash-completion/bash_completion; __load_completion vmup; complete -p vmup"
        var env = ProcessInfo.processInfo.environment
        env["HOME"] = s.path
        env["XDG_DATA_DIRS"] = s.url("opt/share") + ":/usr/share"
        let found = try Subprocess("/bin/bash", ["-c", script], environment: env).run()
        #expect(found.status == 0 && found.stdoutText.contains("_vmtools"), "\(found.stdoutText)\(found.stderrText)")
        env["XDG_DATA_DIRS"] = "/usr/share"
        let missed = try Subprocess("/bin/bash", ["-c", script], environment: env).run()
        #expect(!missed.stdoutText.contains("_vmtools"), "found without XDG_DATA_DIRS: the README's advice would be moot")
    }
}
