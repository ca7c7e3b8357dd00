import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// The committed completion scripts, run in the real shells (Debian
/// `bash-completion`, `fish`, `zsh`): commands, flags, setting names after
/// `-o`, template names after `-t`, VM homes, running VMs, image catalog
/// names for vmimage and after a storage option, snapshot names after a VM
/// home for vmsnap.
@Suite(.serialized) struct ShellCompletionTests {
    /// A scratch tree: command links, two templates, VM homes, a plain directory.
    final class Fixture {
        let cli: CLI
        var qemuPid: pid_t?

        init() throws {
            cli = try CLI(Scratch())
            _ = try cli.scratch.write("share/templates/modern.tpl", "vm_ram_size=1G\n")
            _ = try cli.scratch.write("share/templates/headless.tpl", "vm_display_type=none\n")
            for (name, alias) in [("alpha", "al"), ("beta", "be")] {
                _ = try cli.scratch.write("share/images/\(name).image", """
                    image_kind=cloud
                    image_url_x86_64=https://images.example.org/\(name).qcow2
                    image_digest_x86_64=sha256:\(String(repeating: "ab", count: 32))
                    image_aliases=\(alias)

                    """)
            }
            _ = try cli.scratch.write("vms/a home/vm.settings", "vm_name=a\n")
            _ = try cli.scratch.write("vms/plain/inner/vm.settings", "vm_name=inner\n")
            _ = try cli.scratch.write("vms/run/vm.settings", "vm_name=run\n")
            // A VM with two snapshots, for vmsnap's second operand.
            _ = try cli.scratch.write("vms/snapvm/vm.settings", "vm_name=snapvm\nvm_storage_hdd1_enable=yes\nvm_storage_hdd1_backend=hdd.qcow2\n")
            let image = cli.scratch.url("vms/snapvm/hdd.qcow2")
            for args in [["create", "-q", "-f", "qcow2", image, "1M"], ["snapshot", "-c", "before-upgrade", image], ["snapshot", "-c", "base", image]] {
                let r = try Subprocess("/usr/bin/qemu-img", args).run()
                try #require(r.status == 0, "\(r.stderrText)")
            }
        }

        var environment: [String: String] {
            var env = cli.environment
            env["PATH"] = cli.bin + ":" + (env["PATH"] ?? "/usr/bin:/bin")
            return env
        }

        /// A real, paused QEMU whose pid file is in vms/run: a running VM.
        func startQEMU() throws {
            guard let qemu = requireTool("qemu-system-x86_64") else { return }
            let home = cli.scratch.url("vms/run")
            let r = try Subprocess(qemu, ["-S", "-nodefaults", "-display", "none", "-machine", "none", "-name", "run",
                                         "-pidfile", home + "/qemu.pid", "-daemonize"]).run()
            try #require(r.status == 0, "\(r.stderrText)")
            qemuPid = try #require(pid_t(cli.scratch.read("vms/run/qemu.pid").trimmingCharacters(in: .whitespacesAndNewlines)), "no pid in vms/run/qemu.pid")
        }

        deinit { if let qemuPid { kill(qemuPid, SIGKILL) } }

        /// The candidates one shell offers for `line`, sorted.
        func complete(_ shell: String, _ line: String) throws -> [String] {
            let completions = Repo.root + "/completions"
            let r: Subprocess.Result
            switch shell {
            case "bash":
                // The words as bash would split them (the tests use no quotes).
                var words = line.split(separator: " ").map(String.init)
                if line.hasSuffix(" ") { words.append("") }
                let script = """
                source /usr/share/bash-completion/bash_completion
                source \(completions)/vmtools.bash
                COMP_WORDS=(\(words.map { shellQuote($0) }.joined(separator: " ")))
                COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMP_LINE=\(shellQuote(line)); COMP_POINT=${#COMP_LINE}
                _vmtools
                printf '%s\\n' "${COMPREPLY[@]}"
                """
                r = try Subprocess("/bin/bash", ["-c", script], environment: environment, workingDirectory: cli.scratch.path).run()
            case "fish":
                r = try Subprocess("/usr/bin/fish", ["-c", "source \(completions)/vmtools.fish; complete -C \(shellQuote(line))"],
                                   environment: environment, workingDirectory: cli.scratch.path).run()
            default:
                r = try Subprocess("/usr/bin/zsh", ["-f", Repo.root + "/Tests/Shell/zsh-complete.zsh", completions, line],
                                   environment: environment, workingDirectory: cli.scratch.path).run()
            }
            #expect(r.status == 0, "\(shell) '\(line)': \(r.stderrText)")
            // fish appends a tab and a description.
            return r.stdoutText.split(separator: "\n").map { String($0.split(separator: "\t").first ?? "") }.filter { !$0.isEmpty }.sorted()
        }
    }

    @Test(.requires("bash", "fish", "zsh", "qemu-system-x86_64", "qemu-img"), arguments: ["bash", "fish", "zsh"]) func completesWhatTheSpecsSay(shell: String) throws {
        guard requireTool(shell) != nil else { return }
        if shell == "bash" {
            try #require(FileManager.default.fileExists(atPath: "/usr/share/bash-completion/bash_completion"),
                         "bash-completion is not installed (apt-get install bash-completion)")
        }
        let f = try Fixture()
        #expect(try f.complete(shell, "vmtools vmin") == ["vminfo"])
        #expect(try f.complete(shell, "vmtools vmim") == ["vmimage"])
        // Every flag of a command, through its link and through `vmtools CMD`.
        func flags(_ spec: CommandSpec) -> [String] {
            (spec.options.map { "-\($0.letter)" } + CommandSpec.longOptions.map { "--\($0.name)" }).sorted()
        }
        #expect(try f.complete(shell, "vmup -") == flags(VMUpCommand.spec))
        #expect(try f.complete(shell, "vmtools vmcp -") == flags(VMCpCommand.spec))
        #expect(try f.complete(shell, "vmrndmac --") == ["--help", "--version"])
        #expect(try f.complete(shell, "vmup -o vm_ram") == ["vm_ram_size="])
        #expect(try f.complete(shell, "vmcreate -t ") == ["headless", "modern"])
        // Catalog names and aliases: vmimage's operands, and beside files after a storage option.
        #expect(try f.complete(shell, "vmimage ") == ["al", "alpha", "be", "beta"])
        #expect(try f.complete(shell, "vmtools vmimage -r b") == ["be", "beta"])
        #expect(try f.complete(shell, "vmup -C a") == ["al", "alpha"])
        #expect(try f.complete(shell, "vmcreate -d al") == ["al", "alpha"])
        #expect(try f.complete(shell, "vmcreate -c sh").contains { $0.hasPrefix("share") }, "files still complete")
        // VM homes as they are, other directories to go into.
        let spaced = shell == "zsh" ? "vms/a\\ home" : "vms/a home"
        let homes = try f.complete(shell, "vminfo vms/")
        #expect(homes.contains(spaced) && homes.contains { $0.hasPrefix("vms/plain") } && homes.contains("vms/run"), "\(homes)")
        #expect(try f.complete(shell, "vmrm vms/plain/") == ["vms/plain/inner"])
        // vmsnap: VM homes, then the snapshots of the VM home typed just before.
        #expect(try f.complete(shell, "vmsnap vms/sn") == ["vms/snapvm"])
        #expect(try f.complete(shell, "vmsnap -r vms/snapvm be") == ["before-upgrade"])
        #expect(try f.complete(shell, "vmtools vmsnap -d vms/snapvm ba") == ["base"])
        #expect(try f.complete(shell, "vmsnap vms/snapvm vms/ru") == ["vms/run"], "homes for the next VM of a lab")
        #expect(try f.complete(shell, "vmsnap vms/run be").isEmpty, "a VM without snapshots offers none")
        // Only running VMs for vmdown and vmmon: every running VM of the user,
        // so other suites' guests may be listed too; ours only once it runs.
        let mine = { (list: [String]) in list.filter { $0.hasPrefix(f.cli.scratch.path + "/") } }
        #expect(try mine(f.complete(shell, "vmdown ")).isEmpty)
        try f.startQEMU()
        try #require(f.qemuPid != nil)
        #expect(try mine(f.complete(shell, "vmdown ")) == [f.cli.scratch.url("vms/run")])
        #expect(try mine(f.complete(shell, "vmtools vmmon ")) == [f.cli.scratch.url("vms/run")])
    }
}
