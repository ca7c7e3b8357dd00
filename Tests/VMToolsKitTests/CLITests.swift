import Foundation
import Testing
@testable import VMToolsKit

/// What `--version` names: the binary behind the links, as /proc/self/exe shows it.
private func runningExecutable() throws -> String {
    let binary = try Repo.binary
    return FileSystem.realPath(binary) ?? binary
}

@Suite struct DispatchTests {
    @Test func answersToItsLinkNamesAndToVmtoolsCommand() throws {
        let cli = try CLI(Scratch())
        for name in VMTools.commands.map({ $0.spec.name }) {
            let viaLink = try cli.run(name, ["-h"])
            let viaFront = try cli.run("vmtools", [name, "-h"])
            #expect(viaLink.status == 0 && viaFront.status == 0)
            #expect(viaLink.out.hasPrefix("Usage: \(name) "))
            #expect(viaLink.out == viaFront.out)
            // -h lists every option the command accepts.
            for o in VMTools.command(named: name)!.spec.options {
                #expect(viaLink.out.contains("\n  -\(o.letter)"), "\(name) -h lacks -\(o.letter)")
            }
        }
    }

    @Test func worksFromAnyDirectoryAndAnyLinkLocation() throws {
        let s = Scratch()
        let cli = try CLI(s)
        try s.mkdir("elsewhere/deep")
        try FileManager.default.createSymbolicLink(atPath: s.url("elsewhere/deep/vmrndmac"), withDestinationPath: cli.bin + "/vmtools")
        let r = try Subprocess(s.url("elsewhere/deep/vmrndmac"), ["0a:0b"], environment: cli.environment).run()
        #expect(r.status == 0)
        #expect(r.stdoutText.hasPrefix("0a:0b:"))
    }

    @Test func listsTheCommandsAndPrintsItsVersion() throws {
        let cli = try CLI(Scratch())
        for args in [[], ["-h"], ["--help"]] {
            let r = try cli.run("vmtools", args)
            #expect(r.status == 0)
            for c in VMTools.commands { #expect(r.out.contains("\n  \(c.spec.name) ")) }
            #expect(r.outLines.filter { $0.hasPrefix("  vm") }.count == 13)
        }
        let v = try cli.run("vmtools", ["--version"])
        let executable = try runningExecutable()
        #expect(v.status == 0 && v.out == "vmtools \(VMTools.version)\nexecutable: \(executable)\n")
    }

    /// Issue 10, C3: `vmup --version` said "unknown option --".
    @Test func everyCommandAnswersHelpAndVersion() throws {
        let cli = try CLI(Scratch())
        let executable = try runningExecutable()
        for name in VMTools.commands.map({ $0.spec.name }) {
            let help = try cli.run(name, ["--help"])
            #expect(help.status == 0 && help.err.isEmpty, "\(name) --help: \(help.err)")
            #expect(help.out == (try cli.run(name, ["-h"])).out)
            #expect(help.out.contains("\n  --help ") && help.out.contains("\n  --version "))
            // The path tells two installations on PATH apart.
            let expected = "\(name) (vmtools) \(VMTools.version)\nexecutable: \(executable)\n"
            for args in [["--version"], ["-v", "--version", "ignored operand"]] {
                let v = try cli.run(name, args)
                #expect(v.status == 0 && v.out == expected && v.err.isEmpty, "\(name) \(args): \(v.err)")
            }
            #expect(try cli.run("vmtools", [name, "--version"]).out == expected)
        }
        // An option argument that looks like a long option is still the argument.
        let r = try ArgumentParser.parse(["-o", "--version", "--help"], spec: VMUpCommand.spec)
        #expect(r.values("o") == ["--version"] && r.has("h") && !r.version)
    }

    @Test func unknownNamesAreUsageErrorsListingTheValidOnes() throws {
        let cli = try CLI(Scratch())
        for r in [try cli.run("vmtools", ["vmbogus"]), try cli.run("vmbogus", ["x"])] {
            #expect(r.status == 2)
            #expect(r.out.isEmpty)
            #expect(r.err.contains("vmbogus"))
            for c in VMTools.commands { #expect(r.err.contains(c.spec.name)) }
        }
    }

    @Test func badOptionsAreUsageErrors() throws {
        let cli = try CLI(Scratch())
        let r = try cli.run("vminfo", ["-x"])
        #expect(r.status == 2)
        #expect(r.err.hasPrefix("vminfo: ERROR: unknown option -x\n"))
        #expect(r.out.isEmpty)
        // A long option is named whole (it used to be "unknown option --").
        for (name, option) in [("vmup", "--bogus"), ("vmps", "--help=x"), ("vmdown", "--versions")] {
            let l = try cli.run(name, [option, "vm"])
            #expect(l.status == 2 && l.out.isEmpty)
            #expect(l.err == "\(name): ERROR: unknown option \(option)\nTry '\(name) -h' for help.\n")
        }
    }
}

@Suite struct VMRndMacTests {
    static let hex = Set("0123456789abcdef")

    func bytes(_ mac: String) -> [UInt8] { mac.split(separator: ":").map { UInt8($0, radix: 16)! } }

    @Test func usesTheConfiguredPrefixAndRandomBytes() throws {
        let cli = try CLI(Scratch())
        var seen: Set<String> = []
        for _ in 0..<40 {
            let r = try cli.run("vmrndmac")
            #expect(r.status == 0 && r.err.isEmpty)
            let mac = String(r.out.dropLast())
            #expect(r.out.hasSuffix("\n"))
            #expect(mac.hasPrefix("52:54:00:"))
            #expect(mac.count == 17)
            #expect(mac.dropFirst(9).allSatisfy { Self.hex.contains($0) || $0 == ":" })
            seen.insert(mac)
        }
        // 24 random bits: 40 draws repeat with probability < 1e-4.
        #expect(seen.count >= 39)
    }

    @Test func takesThePrefixFromTheSystemConfiguration() throws {
        let s = Scratch()
        let cli = try CLI(s)
        try s.write("etc/vmtools.conf", "vm_networking_default_mac='0A:bc:'\n")
        let r = try cli.run("vmrndmac")
        #expect(r.status == 0)
        #expect(r.out.hasPrefix("0A:bc:") && r.out.count == 18)
    }

    @Test func anEmptyPrefixGivesALocallyAdministeredUnicastAddress() throws {
        let s = Scratch()
        let cli = try CLI(s)
        try s.write("etc/vmtools.conf", "vm_networking_default_mac=''\n")
        var firstBytes: Set<UInt8> = []
        for _ in 0..<40 {
            let r = try cli.run("vmrndmac")
            let b = bytes(String(r.out.dropLast()))
            #expect(b.count == 6)
            #expect(b[0] & 0x01 == 0, "multicast bit set")
            #expect(b[0] & 0x02 == 0x02, "locally administered bit clear")
            firstBytes.insert(b[0])
        }
        #expect(firstBytes.count > 5)
    }

    @Test(arguments: [("12:34:ab:cd", "12:34:ab:cd:"), ("12:34:ab:cd:", "12:34:ab:cd:"), ("12:34:56:78:9A:BC", "12:34:56:78:9A:BC"),
                      ("12:34:56:78:9A:BC:", "12:34:56:78:9A:BC"), ("fe", "fe:")])
    func keepsThePrefixAsTyped(_ prefix: String, _ expected: String) throws {
        let r = try CLI(Scratch()).run("vmrndmac", [prefix])
        #expect(r.status == 0)
        #expect(r.out.hasPrefix(expected) && r.out.count == 18)
    }

    @Test(arguments: [(":12:34:ab:cd", "wrong structure"), ("12:34:56:78:9A:BC:DE", "wrong structure"), ("123", "wrong structure"),
                      ("13:00", "multicast bit"), ("ff", "multicast bit"), ("-x", "wrong structure"), ("1g", "wrong structure"),
                      ("12::34", "wrong structure"), ("１２", "wrong structure")])
    func refusesBadPrefixes(_ prefix: String, _ reason: String) throws {
        let r = try CLI(Scratch()).run("vmrndmac", ["--", prefix])
        #expect(r.status == 1)
        #expect(r.out.isEmpty)
        #expect(r.err.hasPrefix("vmrndmac: ERROR: \(prefix): ") && r.err.contains(reason))
        #expect(r.err.split(separator: "\n").count == 1)
    }

    /// Issue 10, B9: the original ignored `54` here and printed a 52:… address.
    @Test func refusesASecondOperand() throws {
        for args in [["52", "54"], ["--", "52:54", "00"], ["-x", "y"]] {
            let r = try CLI(Scratch()).run("vmrndmac", args)
            #expect(r.status == 2 && r.out.isEmpty, "\(args)")
            #expect(r.err.hasPrefix("vmrndmac: ERROR: one prefix expected, got 2 operands ("), "\(args): \(r.err)")
        }
    }

    @Test func unknownDashWordsAreInvalidPrefixes() throws {
        for word in ["-x", "--x"] {
            let r = try CLI(Scratch()).run("vmrndmac", [word])
            #expect(r.status == 1 && r.err.contains("wrong structure"), "\(word)")
        }
    }

    @Test func aBadConfiguredPrefixNamesTheSetting() throws {
        let s = Scratch()
        try s.write("etc/vmtools.conf", "vm_networking_default_mac=01:00\n")
        let r = try CLI(s).run("vmrndmac")
        #expect(r.status == 1)
        #expect(r.err.contains("vm_networking_default_mac") && r.err.contains(s.url("etc/vmtools.conf") + ":1"))
    }
}

/// Errors name what the user typed, or the path that is wrong (issue 10, B9 and C4).
@Suite struct OperandReportTests {
    @Test func vmpsDNamesAPathThatIsNotThere() throws {
        let s = Scratch()
        try s.write("stopped/vm.settings", "vm_name=stopped\n")
        let cli = try CLI(s)
        // A stopped VM: quietly nothing to list.
        let stopped = try cli.run("vmps", ["-d", s.url("stopped")])
        #expect(stopped.status == 3 && stopped.out.isEmpty && stopped.err.isEmpty)
        for args in [["-d"], ["-n", "-d"], ["-j", "-d"]] {
            let r = try cli.run("vmps", args + ["stopped", "nowhere", "no/such/dir"], cwd: s.path)
            #expect(r.status == 1, "\(args)")
            #expect(r.err == "vmps: ERROR: nowhere: no such file or directory\nvmps: ERROR: \(s.url("no")): no such directory\n", "\(args)")
        }
    }

    @Test func vmdownReportsTheOperandAsGiven() throws {
        let s = Scratch()
        try s.write("vm/vm.settings", "vm_name=vm\n")
        let r = try CLI(s).run("vmdown", ["vm/vm.settings", "vm"], cwd: s.path)
        #expect(r.status == 3)
        #expect(r.err.hasPrefix("vmdown: ERROR: vm/vm.settings: not running\nvmdown: ERROR: vm: not running\n"), "\(r.err)")
        let m = try CLI(s).run("vmmon", ["-c", "info status", "vm/vm.settings"], cwd: s.path)
        #expect(m.status == 1 && m.err.hasPrefix("vmmon: ERROR: vm/vm.settings: not running"), "\(m.err)")
    }

    @Test func aMissingParentDirectoryIsNamed() throws {
        let s = Scratch()
        try s.write("src/vm.settings", "vm_name=src\n")
        try s.write("file", "")
        let cli = try CLI(s)
        let cases: [(String, [String], String)] = [
            ("vmcreate", ["-n", "-y", s.url("vms/web")], "\(s.url("vms")): no such directory"),
            ("vmcreate", ["-n", "-y", "deep/er/web"], "\(s.url("deep")): no such directory"),
            ("vmcreate", ["-n", "-y", "file/web"], "\(s.url("file")): not a directory"),
            ("vmcp", [s.url("src"), s.url("vms/copy")], "\(s.url("vms")): no such directory"),
            ("vmmv", [s.url("src"), s.url("vms/moved")], "\(s.url("vms")): no such directory"),
        ]
        for (command, args, message) in cases {
            let r = try cli.run(command, args, cwd: s.path)
            #expect(r.status == 1, "\(command) \(args)")
            #expect(r.err == "\(command): ERROR: \(message)\n", "\(command) \(args)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.path).sorted() == ["bin", "etc", "file", "home", "share", "src"])
        #expect(try s.read("src/vm.settings") == "vm_name=src\n")
    }
}
