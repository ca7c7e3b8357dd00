import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// `vm_tpm` (vm.settings(5), TPM): the `tpm` module's arguments and plan,
/// its errors, the executor's handling of swtpm when a start fails, and
/// what vminfo and vmfix say. A stand-in swtpm: no guest boots here
/// (TPMBootTests does).
@Suite struct TPMTests {
    let build = BuildCmdTests()

    static let devices = ["-chardev", "socket,id=chrtpm,path=./tpm.sock", "-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-crb,tpmdev=tpm0"]

    static func swtpmArguments() -> [String] {
        ["socket", "--tpm2", "--tpmstate", "dir=tpm,mode=0600", "--ctrl", "type=unixio,path=tpm.sock,mode=0600",
         "--pid", "file=tpm.pid", "--terminate"]
    }

    @Test func noneAddsNothing() throws {
        let s = Scratch()
        try s.mkdir("vm")
        let plain = try build.command(s, [:], home: s.url("vm"))
        let none = try build.command(s, ["vm_tpm": "none"], home: s.url("vm"))
        #expect(none.argv == plain.argv)
        #expect(!none.argv.contains("-tpmdev") && !none.argv.contains("-chardev"))
        #expect(none.plan.helpers.isEmpty && none.plan.directoriesToCreate.isEmpty)
    }

    /// The home's name has a comma: swtpm cannot escape one, so it and QEMU
    /// get paths relative to the run directory they start in.
    @Test func twoPointZeroRunsSwtpmBesideQEMU() throws {
        let s = Scratch()
        let swtpm = try s.writeScript("bin/swtpm", "#!/bin/sh\nexit 0\n")
        try s.mkdir("a,b")
        let home = s.url("a,b")
        let c = try build.command(s, ["vm_tpm": "2.0"], home: home, environment: ["PATH": s.url("bin")])
        #expect(Array(c.argv.suffix(6)) == Self.devices)
        #expect(c.plan.helpers == [.init(executable: swtpm, arguments: Self.swtpmArguments(), readyPath: home + "/tpm.sock", log: home + "/tpm.log")])
        #expect(c.plan.directoriesToCreate == [home + "/tpm"])
        #expect(c.plan.dryRunLines.contains("would create the directory \(home)/tpm"))
        #expect(c.plan.dryRunLines.contains("would run \(swtpm) socket --tpm2 --tpmstate dir=tpm,mode=0600 --ctrl type=unixio,path=tpm.sock,mode=0600 --pid file=tpm.pid --terminate beside QEMU"))
        #expect(!s.exists("a,b/tpm"), "planning makes nothing")

        // Once made, the state directory stays; a stale socket is removed by the executor.
        try s.mkdir("a,b/tpm")
        try s.write("a,b/tpm.sock", "")
        let again = try build.command(s, ["vm_tpm": "2.0"], home: home, environment: ["PATH": s.url("bin")])
        #expect(again.plan.directoriesToCreate.isEmpty)
        #expect(again.plan.filesToRemove.contains(home + "/tpm.sock"))
    }

    /// A bare boot has no home: the state lives in its run-time directory,
    /// which goes when the VM stops.
    @Test func aBareBootKeepsTheStateInItsRunDirectory() throws {
        let s = Scratch()
        try s.writeScript("bin/swtpm", "#!/bin/sh\nexit 0\n")
        try s.mkdir("run/bare-abcdef")
        let run = s.url("run/bare-abcdef")
        let c = try build.command(s, ["vm_tpm": "2.0"], runDirectory: run, environment: ["PATH": s.url("bin")])
        #expect(c.plan.directoriesToCreate == [run + "/tpm"])
        #expect(c.plan.helpers.first?.readyPath == run + "/tpm.sock")
        #expect(Array(c.argv.suffix(6)) == Self.devices)
    }

    /// An empty PATH (BuildCmdTests): no swtpm to find.
    @Test(arguments: [
        ("1.2", "vm_tpm: '1.2' (from command line (-o)): expected none or 2.0"),
        ("2", "vm_tpm: '2' (from command line (-o)): expected none or 2.0"),
        ("2.0", "vm_tpm: '2.0' (from command line (-o)): swtpm is not installed (Debian: apt-get install swtpm)"),
    ])
    func badValuesAndAMissingSwtpmNameTheSetting(value: String, message: String) throws {
        let s = Scratch()
        try s.mkdir("vm")
        #expect { try build.command(s, ["vm_tpm": value], home: s.url("vm")) }
            throws: { ($0 as? VMToolsError)?.description == message }
    }

    /// A swtpm that exits before making its socket fails the start at once,
    /// saying what it said; the new state directory goes, its log stays.
    @Test func aHelperThatDiesFailsTheStartAtOnce() throws {
        let s = Scratch()
        try s.writeScript("bin/swtpm", "#!/bin/sh\necho 'swtpm: cannot lock the state' >&2\nexit 3\n")
        try s.mkdir("vm")
        var c = try build.command(s, ["vm_tpm": "2.0"], home: s.url("vm"), dryRun: false, environment: ["PATH": s.url("bin")])
        c.plan.argv = ["/bin/sh", "-c", "echo qemu ran > qemu.ran"]
        var run = try build.executor(s, c)
        try run.prepare()
        #expect(FileSystem.isDirectory(s.url("vm/tpm")) && FileSystem.mode(s.url("vm/tpm")) == 0o700)
        let started = Date()
        #expect { try run.start() } throws: {
            ($0 as? VMToolsError)?.description == "\(s.url("bin/swtpm")): exited with status 3 before making its socket \(s.url("vm/tpm.sock")): swtpm: cannot lock the state"
        }
        #expect(Date().timeIntervalSince(started) < 5, "no wait for a socket that will never come")
        #expect(!s.exists("vm/qemu.ran") && !s.exists("vm/tpm"))
        #expect(try s.read("vm/tpm.log") == "swtpm: cannot lock the state\n")
        #expect(FileSystem.mode(s.url("vm/tpm.log")) == 0o600)
    }

    /// QEMU refuses to start after swtpm did: swtpm is stopped (and waited
    /// for) while its state directory is still there, then its socket, pid
    /// file, new log and new state go.
    @Test func aFailedDaemonisedStartLeavesNoHelperAndNoSocket() throws {
        let s = Scratch()
        try s.writeScript("bin/swtpm", """
            #!/bin/sh
            echo $$ > ../helper.pid
            trap 'if [ -d tpm ]; then echo yes; else echo no; fi > ../state-at-term; kill $s; exit 0' TERM
            sleep 60 & s=$!
            # The socket last: vmup may stop the helper as soon as it exists.
            : > tpm.pid
            : > tpm.sock
            wait

            """)
        try s.mkdir("vm")
        var c = try build.command(s, ["vm_tpm": "2.0"], home: s.url("vm"), dryRun: false, environment: ["PATH": s.url("bin")])
        #expect(c.daemonize)
        c.plan.argv = ["/bin/sh", "-c", "echo 'qemu: -nonsense-option: invalid option' >&2; exit 1"]
        var run = try build.executor(s, c)
        try run.prepare()
        #expect { try run.start() } throws: {
            ($0 as? VMToolsError)?.description == "\(s.url("vm")): QEMU failed to start: qemu: -nonsense-option: invalid option"
        }
        let helper = try #require(Int32(try s.read("helper.pid").trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(kill(helper, 0) != 0 && errno == ESRCH, "the helper was stopped and reaped")
        #expect(try s.read("state-at-term") == "yes\n", "the state directory outlived the helper")
        #expect(!s.exists("vm/tpm.pid") && !s.exists("vm/tpm.sock") && !s.exists("vm/tpm.log") && !s.exists("vm/tpm"))
        #expect(waitUntil(5) { ProcessTable.cwdMatches(s.url("vm")).isEmpty }, "\(ProcessTable.cwdMatches(s.url("vm")))")
    }

    @Test(.requires("qemu-system-x86_64")) func vmupDashNSaysWhatATPMStartWouldDo() throws {
        guard let qemu = requireTool("qemu-system-x86_64") else { return }
        let s = Scratch()
        let cli = try CLI(s)
        let swtpm = try s.writeScript("fakebin/swtpm", "#!/bin/sh\nexit 0\n")
        // vmup -n looks QEMU up; swtpm is the stand-in, or missing.
        try FileManager.default.createSymbolicLink(atPath: s.url("fakebin/qemu-system-x86_64"), withDestinationPath: qemu)
        try s.write("vm/vm.settings", "vm_name=t\nvm_tpm=2.0\n")
        let r = try cli.run("vmup", ["-n", "-v", s.url("vm")], env: ["PATH": s.url("fakebin")])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("vmup: NOTICE: would create the directory \(s.url("vm/tpm"))\n"), "\(r.err)")
        #expect(r.err.contains("vmup: NOTICE: would run \(swtpm) socket --tpm2 --tpmstate dir=tpm,mode=0600 --ctrl type=unixio,path=tpm.sock,mode=0600 --pid file=tpm.pid --terminate beside QEMU\n"), "\(r.err)")
        #expect(r.out.contains(" -chardev socket,id=chrtpm,path=./tpm.sock -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-crb,tpmdev=tpm0"), "\(r.out)")
        #expect(!s.exists("vm/tpm"))

        try FileManager.default.removeItem(atPath: swtpm)
        let missing = try cli.run("vmup", ["-n", s.url("vm")], env: ["PATH": s.url("fakebin")])
        #expect(missing.status == 1)
        #expect(missing.err.hasSuffix("vmup: ERROR: vm_tpm: '2.0' (from \(s.url("vm/vm.settings")):2): swtpm is not installed (Debian: apt-get install swtpm)\n"), "\(missing.err)")
    }

    @Test func vminfoShowsTheTPM() throws {
        let s = Scratch()
        let cli = try CLI(s)
        try s.write("on/vm.settings", "vm_name=on\nvm_tpm=2.0\n")
        try s.write("off/vm.settings", "vm_name=off\n")
        try s.write("bad/vm.settings", "vm_name=bad\nvm_tpm=1.2\n")
        #expect(try cli.run("vminfo", ["-i", s.url("on")]).out.contains("\nTPM: 2.0 (swtpm, state in tpm/)\n"))
        #expect(!(try cli.run("vminfo", ["-i", s.url("off")]).out.contains("TPM")))
        #expect(try cli.run("vminfo", ["-i", s.url("bad")]).out.contains("\nTPM: ? (vm_tpm: '1.2' (from \(s.url("bad/vm.settings")):2): expected none or 2.0)\n"))
        func json(_ home: String) throws -> Any? {
            let r = try cli.run("vminfo", ["-j", s.url(home)])
            return (try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]])?.first?["tpm"]
        }
        #expect(try json("on") as? String == "2.0")
        #expect(try json("off") as? String == "none")
        #expect((try json("bad") as? [String: Any])?["error"] as? String == "vm_tpm: '1.2' (from \(s.url("bad/vm.settings")):2): expected none or 2.0")
    }

    /// swtpm's socket, pid file and log are run-time files (vmfix(1) -d).
    @Test func vmfixRemovesTheTPMsRunTimeFiles() throws {
        let s = Scratch()
        let cli = try CLI(s)
        try s.write("vm/vm.settings", "vm_name=t\nvm_tpm=2.0\n")
        for f in ["tpm.sock", "tpm.pid", "tpm.log", "tpm/tpm2-00.permall"] { try s.write("vm/\(f)", "x") }
        let r = try cli.run("vmfix", ["-d", s.url("vm")])
        #expect(r.err.contains(s.url("vm/tpm.sock")), "\(r.err)")
        #expect(!s.exists("vm/tpm.sock") && !s.exists("vm/tpm.pid") && !s.exists("vm/tpm.log"))
        #expect(s.exists("vm/tpm/tpm2-00.permall"), "the TPM's state is the VM's, not a leftover")
    }
}

/// Processes found in /proc by their working directory: swtpm's arguments
/// are relative, so this is what ties one to a test's VM home.
enum ProcessTable {
    /// Live (not zombie) processes whose working directory is `dir`, with their command lines.
    static func cwdMatches(_ dir: String) -> [String] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { name -> String? in
            guard let pid = Int32(name), pid != getpid(), isLive(pid) else { return nil }
            guard (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd")) == dir else { return nil }
            let cmdline = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))).map { String(decoding: $0, as: UTF8.self) } ?? ""
            return "\(pid) " + cmdline.replacingOccurrences(of: "\0", with: " ")
        }
    }

    /// Running, not a zombie its (init) parent has yet to reap.
    static func isLive(_ pid: Int32) -> Bool {
        guard let state = statFields(pid)?.first?.first else { return false }
        return state != "Z" && state != "X"
    }

    /// The fields of `/proc/PID/stat` after the command name (state first,
    /// start time at index 19); nil for no such process.
    static func statFields(_ pid: Int32) -> [Substring]? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(after: close)...].split(separator: " ")
    }
}
