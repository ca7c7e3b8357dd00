import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

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
            #expect(r.outLines.filter { $0.hasPrefix("  vm") }.count == 15)
        }
        let v = try cli.run("vmtools", ["--version"])
        let executable = try runningExecutable()
        #expect(v.status == 0 && v.out == "vmtools \(Release.version)\nexecutable: \(executable)\n")
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
            let expected = "\(name) (vmtools) \(Release.version)\nexecutable: \(executable)\n"
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
