import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// Completions and man pages must not drift from what the commands accept.
@Suite struct DocsTests {
    @Test(arguments: Completions.shells)
    func committedCompletionsMatchTheCommandSpecs(_ shell: String) throws {
        let file = Completions.fileName(for: shell)
        let committed = try String(contentsOfFile: "\(Repo.root)/completions/\(file)", encoding: .utf8)
        #expect(committed == Completions.script(for: shell), "regenerate with: vmtools --completion \(shell) > completions/\(file)")
    }

    /// etc/vmtools.conf is generated from the defaults table, as the
    /// completions are from the specs (issue 23, item 5): one source per default.
    @Test func committedVmtoolsConfMatchesTheDefaultsTable() throws {
        let committed = try String(contentsOfFile: "\(Repo.root)/etc/vmtools.conf", encoding: .utf8)
        #expect(committed == Defaults.configurationFile, "regenerate with: vmtools --defaults > etc/vmtools.conf")
        let r = try CLI(Scratch()).run("vmtools", ["--defaults"])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out == committed)
        #expect(try CLI(Scratch()).run("vmtools", ["--defaults", "x"]).status == 2)
    }

    @Test func bashCompletesFlagsSettingsAndCommands() throws {
        func complete(_ words: [String]) throws -> [String] {
            let quoted = words.map { "'\($0)'" }.joined(separator: " ")
            let script = "source '\(Repo.root)/completions/vmtools.bash'; COMP_WORDS=(\(quoted)); COMP_CWORD=\(words.count - 1); _vmtools; printf '%s\\n' \"${COMPREPLY[@]}\""
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/bash")
            p.arguments = ["-c", script]
            let pipe = Pipe()
            p.standardOutput = pipe
            try p.run()
            let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return out.split(separator: "\n").map(String.init)
        }
        let flags = try complete(["vminfo", "-"])
        #expect(Set(flags) == Set(VMInfoCommand.spec.options.map { "-\($0.letter)" } + ["--help", "--version"]))
        #expect(try complete(["vmup", "-o", "vm_ram"]) == ["vm_ram_size="])
        #expect(try complete(["vmtools", "vmrnd"]) == ["vmrndmac"])
        #expect(try complete(["vmtools", "vmcp", "-"]).contains("-R"))
    }

    /// Every option letter a command accepts has an entry in its (mdoc) man
    /// page's option list: `.It Fl X`.
    @Test func manPagesListEveryOption() throws {
        for c in VMTools.commands {
            let path = "\(Repo.root)/Docs/\(c.spec.name).1"
            try #require(FileManager.default.fileExists(atPath: path), "\(c.spec.name) has no man page")
            let page = try String(contentsOfFile: path, encoding: .utf8)
            for o in c.spec.options {
                #expect(page.range(of: "(?m)^\\.It Fl \(o.letter)( |$)", options: .regularExpression) != nil,
                        "\(c.spec.name)(1) does not document -\(o.letter)")
            }
            for l in CommandSpec.longOptions {
                #expect(page.range(of: "(?m)^\\.It Fl (\\\\)?-\(l.name)$", options: .regularExpression) != nil,
                        "\(c.spec.name)(1) does not document --\(l.name)")
            }
        }
    }

    @Test func theOverviewPageNamesEveryCommandAndSetting() throws {
        let page = try String(contentsOfFile: "\(Repo.root)/Docs/vmtools.1", encoding: .utf8)
        for c in VMTools.commands { #expect(page.contains(c.spec.name)) }
        let conf = try String(contentsOfFile: "\(Repo.root)/Docs/vmtools.conf.5", encoding: .utf8)
        for (name, _) in Defaults.values {
            // Drive settings are documented once per family: .Va vm_storage_hdd Ns Ar N Ns Va _backend.
            if let slot = SettingsDocument.Slot(setting: name) {
                let kind = { if case .hdd = slot { return "hdd" } else { return "cdrom" } }()
                let suffix = name.split(separator: "_").last!
                #expect(conf.contains("Va vm_storage_\(kind) Ns Ar N Ns Va _") && conf.contains("Va _\(suffix) "), "vmtools.conf(5) lacks \(name)")
            } else if SettingName.isShareSetting(name) {
                let suffix = name.split(separator: "_").last!
                #expect(conf.contains("Va vm_share Ns Ar N Ns Va _path") && conf.contains("Va _\(suffix) "), "vmtools.conf(5) lacks \(name)")
            } else {
                #expect(conf.contains(name), "vmtools.conf(5) lacks \(name)")
            }
        }
    }

    /// vmtools(7) documents every module category and every built-in module,
    /// and every shipped template.
    @Test func theCustomizationPageNamesEveryModuleAndTemplate() throws {
        let page = try String(contentsOfFile: Repo.root + "/Docs/vmtools.7", encoding: .utf8)
        for category in ModuleCategory.allCases {
            #expect(page.contains(category.rawValue) && page.contains(category.listSetting), "\(category.rawValue)")
            for name in category.builtinNames {
                #expect(page.range(of: "(?m)(^|[ (])\(name)([ ,;).]|$)", options: .regularExpression) != nil, "vmtools(7) does not name the module \(name)")
            }
        }
        for t in try FileManager.default.contentsOfDirectory(atPath: Repo.root + "/etc/templates") where t.hasSuffix(".tpl") {
            #expect(page.range(of: "(?m)^\\.It Cm \(t.dropLast(4))$", options: .regularExpression) != nil, "vmtools(7) does not describe the template \(t)")
        }
    }
}
