import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// Each command reads its option letters once, into a named `Options`
/// value; these pin what each letter means to each command.
@Suite struct CommandOptionsTests {
    func parse(_ command: any Command.Type, _ args: [String]) throws -> ParsedArguments {
        try ArgumentParser.parse(args, spec: command.spec)
    }

    @Test func parsedArgumentsKnowTheirSpecsLetters() throws {
        for command in VMTools.commands {
            let a = try parse(command, [])
            #expect(a.known == Set(command.spec.options.map(\.letter)), "\(command.spec.name)")
            for o in command.spec.options { #expect(a.isKnown(o.letter)) }
        }
        #expect(try !parse(VMPsCommand.self, []).isKnown("z"))
        #expect(try !parse(VMRmCommand.self, []).isKnown("s"))
    }

    #if DEBUG
    /// Asking for a letter the spec lacks would read "not given" forever: a debug build traps.
    @Test func readingALetterTheSpecLacksTraps() async {
        await #expect(processExitsWith: .failure) {
            let a = try ArgumentParser.parse(["-j"], spec: VMPsCommand.spec)
            _ = a.has("z")
        }
        await #expect(processExitsWith: .failure) {
            let a = try ArgumentParser.parse(["-y"], spec: VMRmCommand.spec)
            _ = a.occurrences(of: "sy")
        }
    }
    #endif

    @Test func vmdownMethodsRunInTheirFixedOrder() throws {
        let all = try VMDownCommand.Options(parse(VMDownCommand.self, ["-kts"]))
        #expect(all.methods == [.powerOff, .terminate, .kill])
        #expect(all.wait)
        #expect(all.selection == .homes)
        let none = try VMDownCommand.Options(parse(VMDownCommand.self, ["-a"]))
        #expect(none.methods == [.powerOff, .terminate, .kill])
        #expect(none.selection == .allOfMine)
        let one = try VMDownCommand.Options(parse(VMDownCommand.self, ["-t", "vm"]))
        #expect(one.methods == [.terminate])
        #expect(!one.wait)
        #expect(try VMDownCommand.Options(parse(VMDownCommand.self, ["-sw", "vm"])).wait)
        #expect(try VMDownCommand.Options(parse(VMDownCommand.self, ["-p", "1"])).selection == .pids)
        #expect(expectError { _ = try VMDownCommand.Options(parse(VMDownCommand.self, ["-a", "vm"])) }?.code == .usage)
        #expect(expectError { _ = try VMDownCommand.Options(parse(VMDownCommand.self, ["-ap"])) }?.message == "-a and -p cannot be combined")
    }

    @Test func vmpsFieldsAreOneTable() throws {
        let letters = VMPsCommand.fields.map(\.letter)
        #expect(String(letters) == "abcdefghilmnopqrstuvwx")
        #expect(letters == letters.sorted())
        #expect(Set(VMPsCommand.fields.map(\.header)).count == letters.count)
        #expect(VMPsCommand.fields.map(\.jsonKey) == ["accelerator", "firmware", "cpu_percent", "display", "argv", "forwards", "ram_mb", "home",
                                                    "disk_read_bytes_per_second", "cpu_now_percent", "memory_kb", "name",
                                                    "disk_write_bytes_per_second", "pid", "monitor", "net_rx_bytes_per_second",
                                                    "net_tx_bytes_per_second", "uptime_seconds", "user", "vcpus", "guest_addresses", "rss_kb"])
        #expect(VMPsCommand.fields.filter(\.numeric).map(\.letter) == ["c", "g", "i", "l", "m", "o", "r", "s", "t", "v", "x"])
        // Rates cost a sampling interval (vmps(1) RATES).
        #expect(VMPsCommand.fields.filter(\.rate).map(\.letter) == ["i", "l", "o", "r", "s"])
        // The -o help names the letters the table has.
        #expect(VMPsCommand.spec.option("o")?.help.contains("abcdefghilmnopqrstuvwx") == true)

        let o = try VMPsCommand.Options(parse(VMPsCommand.self, ["-r", "-o", "xan", "-s", "Tn"]))
        #expect(o.fields.map(\.header) == ["RSS KB", "ACCEL", "NAME"])
        #expect(o.sortKeys.map { "\($0.field.letter)\($0.descending)" } == ["ttrue", "nfalse"])
        #expect(o.raw && !o.json && !o.quiet && o.selection == nil)
        let d = try VMPsCommand.Options(parse(VMPsCommand.self, ["-j"]))
        #expect(d.fields.map(\.letter) == ["p", "n", "d"])
        #expect(d.json && !d.wantsRates && d.watch == nil)
        #expect(try VMPsCommand.Options(parse(VMPsCommand.self, ["-s", "Ip"])).wantsRates)
        let w = try VMPsCommand.Options(parse(VMPsCommand.self, ["-w", "2.5"]))
        #expect(w.watch == 2.5 && w.wantsRates && String(w.fields.map(\.letter)) == "pnlvgxiorst")
        #expect(w.sortKeys.map { "\($0.field.letter)\($0.descending)" } == ["ltrue"])
        #expect(try VMPsCommand.Options(parse(VMPsCommand.self, ["-w"])).watch == 2)
        #expect(try VMPsCommand.Options(parse(VMPsCommand.self, ["-w", "-s", "n"])).watch == 2)
        #expect(try VMPsCommand.Options(parse(VMPsCommand.self, ["-u", "root"])).selection == .users)
        #expect(expectError { _ = try VMPsCommand.Options(parse(VMPsCommand.self, ["-n", "-s", "p"])) }?.message == "-n cannot be combined with -o, -s or -w")
        #expect(expectError { _ = try VMPsCommand.Options(parse(VMPsCommand.self, ["-o", "pz"])) }?.message == "-o pz: fields are letters of abcdefghilmnopqrstuvwx")
        #expect(expectError { _ = try VMPsCommand.Options(parse(VMPsCommand.self, ["-d"])) }?.message == "-d needs at least one operand")
    }

    /// vmps's table, end to end: every field's header, and every JSON key.
    @Test(.requires("qemu-system-x86_64")) func vmpsShowsEveryFieldOfAQemu() throws {
        _ = try #require(requireTool("qemu-system-x86_64"))
        let s = Scratch()
        try s.mkdir("q")
        let qemu = try RawGuest(in: s.url("q"), ["-S", "-name", "fields"], memory: "16")
        let pid = try #require(qemu.pid)
        defer { withExtendedLifetime(qemu) {} }
        let cli = try CLI(s)
        let r = try cli.run("vmps", ["-o", "pnux", "-s", "P", "-p", String(pid)])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.outLines.first?.split(separator: " ", omittingEmptySubsequences: true) == ["PID", "NAME", "USER", "RSS", "KB"])
        let row = try #require(r.outLines.dropFirst().first).split(separator: " ", omittingEmptySubsequences: true)
        #expect(row.count == 4)
        #expect(row.first.map(String.init) == String(pid))
        #expect(row.dropFirst().first == "fields")
        #expect(row.last.flatMap { Int($0) }.map { $0 > 0 } == true)
        let j = try cli.run("vmps", ["-j", "-p", String(pid)])
        #expect(j.status == 0)
        let docs = try #require(try JSONSerialization.jsonObject(with: Data(j.out.utf8)) as? [[String: Any]])
        let doc = try #require(docs.first)
        // Without a rate field nothing is sampled, and no rate key is there.
        #expect(Set(doc.keys) == Set(VMPsCommand.fields.filter { !$0.rate }.map(\.jsonKey)))
        let rates = try cli.run("vmps", ["-j", "-o", "l", "-p", String(pid)])
        let rateDoc = try #require((try JSONSerialization.jsonObject(with: Data(rates.out.utf8)) as? [[String: Any]])?.first)
        #expect(Set(rateDoc.keys) == Set(VMPsCommand.fields.map(\.jsonKey)))
        #expect(rateDoc["ram_mb"] as? Int == 16 && rateDoc["vcpus"] as? Int == 1)
        #expect((doc["pid"] as? NSNumber)?.int32Value == pid)
        #expect(doc["name"] as? String == "fields")
        #expect((doc["argv"] as? [String])?.contains("fields") == true)
        #expect(doc["home"] is NSNull)
    }

    @Test func vmfixAAndCapitalAReplaceWhatCameBefore() throws {
        func tests(_ args: [String]) throws -> String {
            String(try VMFixCommand.Options(parse(VMFixCommand.self, args)).tests.sorted())
        }
        #expect(try tests(["-da"]) == "blps")
        #expect(try tests(["-ad"]) == "bdlps")
        #expect(try tests(["-A"]) == "bdlps")
        #expect(try tests(["-p", "-s"]) == "ps")
        let o = try VMFixCommand.Options(parse(VMFixCommand.self, ["-rnl"]))
        #expect(o.checkOnly && o.recursive)
        #expect(expectError { _ = try VMFixCommand.Options(parse(VMFixCommand.self, ["-rn"])) }?.code == .usage)
    }

    @Test func vminfoSectionsFollowTheCommandLine() throws {
        let o = VMInfoCommand.Options(try parse(VMInfoCommand.self, ["-sm", "-la", "-i"]))
        #expect(o.sections == [.settings, .modules, .info])
        #expect(o.long && o.ascii && !o.provenance && !o.json)
        let d = VMInfoCommand.Options(try parse(VMInfoCommand.self, ["-jpy"]))
        #expect(d.sections == [.info, .tree, .settings, .backend])
        #expect(d.json && d.provenance)
    }

    @Test func smallCommandsNameTheirOptions() throws {
        let merge = try VMMergeCommand.Options(parse(VMMergeCommand.self, ["-cys"]))
        #expect(merge.intoChildren && merge.safe)
        #expect(merge.commandLine.value("cfg_ui_assumeyes") == "yes")
        #expect(try !VMMergeCommand.Options(parse(VMMergeCommand.self, [])).intoChildren)
        #expect(expectError { _ = try VMMergeCommand.Options(parse(VMMergeCommand.self, ["-cp"])) }?.code == .usage)

        let rm = try VMRmCommand.Options(parse(VMRmCommand.self, ["-k", "vm"]))
        #expect(rm.keep && !rm.recursive && rm.commandLine.entries.isEmpty)
        #expect(expectError { _ = try VMRmCommand.Options(parse(VMRmCommand.self, ["-r"])) }?.message == "name the VM homes to delete")

        let into = try VMMvCommand.Options(parse(VMMvCommand.self, ["-t", "dir", "a", "b"]))
        #expect(into.sources == ["a", "b"] && into.target == "dir" && into.targetIsDirectory)
        let rename = try VMMvCommand.Options(parse(VMMvCommand.self, ["-y", "a", "b"]))
        #expect(rename.sources == ["a"] && rename.target == "b" && !rename.targetIsDirectory)
        #expect(expectError { _ = try VMMvCommand.Options(parse(VMMvCommand.self, ["-t", "x", "-t", "y", "a"])) }?.message == "-t can be given once only")

        let mon = try VMMonCommand.Options(parse(VMMonCommand.self, ["-c", "info status", "-n", "-c", "info name"]))
        #expect(mon.command == "info name" && mon.noLineEditing)
        #expect(expectError { _ = try VMMonCommand.Options(parse(VMMonCommand.self, ["a", "b"])) }?.code == .usage)
    }

    /// `-o` and `-y` are both overrides: the later one wins, whichever it is.
    @Test func sharedSettingsKeepCommandLineOrder() throws {
        let yesLast = try SharedOptions.settings(parse(VMCpCommand.self, ["-o", "cfg_ui_assumeyes=no", "-y"]))
        #expect(yesLast.value("cfg_ui_assumeyes") == "yes")
        let oLast = try SharedOptions.settings(parse(VMCpCommand.self, ["-y", "-o", "cfg_ui_assumeyes=no", "-o", "vm_name=x"]))
        #expect(oLast.value("cfg_ui_assumeyes") == "no")
        #expect(oLast.entries.map(\.flag) == ["-o", "-o"])
        // vmrm has no -o: only -y is read.
        #expect(try SharedOptions.settings(parse(VMRmCommand.self, ["-y", "vm"])).entries.map(\.name) == ["cfg_ui_assumeyes"])
        #expect(expectError { _ = try SharedOptions.settings(parse(VMForkCommand.self, ["-o", "novalue"])) }?.code == .usage)
    }

    @Test func cloneOptionsComeFromEitherCommand() throws {
        let fork = try CloneOptions(parse(VMForkCommand.self, ["-Rrkszy", "-m", "a", "-M", "b", "-m", "c"]), defaultMode: .fork)
        #expect(fork.mode == .fork)
        #expect(fork.childRecursion && fork.directoryRecursion && fork.keepUnique && fork.snapshot && fork.compress && !fork.noLock)
        #expect(fork.addModules == ["a", "c"] && fork.removeModules == ["b"])
        #expect(fork.settings.value("cfg_ui_assumeyes") == "yes")
        #expect(try CloneOptions(parse(VMCpCommand.self, []), defaultMode: .copy).mode == .copy)
        #expect(try CloneOptions(parse(VMCpCommand.self, ["-f"]), defaultMode: .copy).mode == .fork)
        #expect(try CloneOptions(parse(VMForkCommand.self, ["-c"]), defaultMode: .fork).mode == .copy)
        let standalone = try CloneOptions(parse(VMCpCommand.self, ["-an"]), defaultMode: .copy)
        #expect(standalone.mode == .autonomous && standalone.noLock)
        #expect(expectError { _ = try CloneOptions(parse(VMCpCommand.self, ["-n"]), defaultMode: .copy) }?.message == "-n goes with -a only")
        #expect(expectError { _ = try CloneOptions(parse(VMCpCommand.self, ["-af"]), defaultMode: .copy) }?.code == .usage)
    }

    /// The cloner reports each pair through its closure and prints nothing itself.
    @Test func clonerReportsInsteadOfPrinting() throws {
        let s = Scratch()
        _ = try s.write("src/vm.settings", "vm_name=src\n")
        let g = try resolver(s).loadGlobal()
        let out = try s.write("out.txt", "")
        let fd = open(out, O_WRONLY | O_APPEND)
        defer { close(fd) }
        let console = Console(command: "test", out: OutputStream(fd: fd), err: OutputStream(fd: fd), verbosity: 9)
        let events = EventSink()
        let cloner = try Cloner(CloneOptions(mode: .copy), global: g, resolver: resolver(s), cwd: s.path, environment: [:],
                                console: console) { events.list.append($0) }
        let status = cloner.cloneEach([("src", "copy"), ("missing", "other")]) { operand in
            let path = try FileSystem.canonicalize(operand, cwd: s.path)
            guard FileSystem.isDirectory(path) else { throw VMToolsError(.failure, operand, "not a directory") }
            return path
        }
        console.flush()
        #expect(status == .failure)
        #expect(events.list.count == 2)
        guard case let .made(source, home, mode)? = events.list.first else {
            Issue.record("first pair: \(events.list)")
            return
        }
        #expect(source == s.url("src") && home == s.url("copy") && mode == .copy)
        #expect(try s.read("copy/vm.settings").contains("vm_name=copy"))
        guard case let .failed(e)? = events.list.last else {
            Issue.record("second pair: \(events.list)")
            return
        }
        #expect(e.subject == "missing" && e.message == "not a directory")
        #expect(!s.exists("other"))
        #expect(try s.read("out.txt") == "")
    }
}

private final class EventSink: @unchecked Sendable {
    var list: [Cloner.Event] = []
}
