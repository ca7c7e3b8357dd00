import VMToolsCore
import VMToolsQEMU
import VMToolsLaunch

#if canImport(Glibc)
import Glibc
#endif

/// `vminfo`: report on VMs (vminfo(1)), plus `-p` (where each setting
/// comes from) and `-j` (everything as JSON). Read-only: no lock, no change.
public enum VMInfoCommand: Command {
    public static let spec = CommandSpec(
        name: "vminfo",
        summary: "report on virtual machines: state, fork tree, settings and disks",
        options: [
            OptionSpec("a", "draw the tree with ASCII characters"),
            OptionSpec("b", "storage backend section"),
            OptionSpec("i", "general information section"),
            OptionSpec("j", "print everything as JSON (settings with their origin, parent, children, disks, state)"),
            OptionSpec("l", "long output: more detail in each section"),
            OptionSpec("L", "print a libvirt domain definition (XML) of each VM; what libvirt cannot express is noted on stderr"),
            OptionSpec("m", "modules section: which implementation (built-in or file) each module has, in order"),
            OptionSpec("p", "show where each setting comes from (file and line, template, default)"),
            OptionSpec("s", "settings section"),
            OptionSpec("t", "fork tree section"),
            OptionSpec("y", "assume yes (accepted, no effect)"),
        ],
        operands: "[vmhome ...]",
        operandCompletion: .home,
        exitCodes: [(0, "every VM was reported"), (1, "a VM could not be loaded, or a running VM's guest agent or QMP answered badly"), (2, "wrong usage")]
    )

    enum Section: Character, CaseIterable {
        case info = "i", tree = "t", settings = "s", backend = "b", modules = "m"

        var title: String {
            switch self {
            case .info: return "General information (-i)"
            case .tree: return "Hierarchy tree (-t)"
            case .settings: return "Settings (-s)"
            case .backend: return "Storage backend (-b)"
            case .modules: return "Modules (-m)"
            }
        }
    }

    /// What the command line asks for (vminfo(1)); `-y` is accepted and ignored.
    struct Options {
        /// In command-line order; the four main ones when none is named.
        var sections: [Section]
        var json: Bool
        var libvirt: Bool
        var long: Bool
        var ascii: Bool
        var provenance: Bool
        /// Sample running VMs' live figures (vminfo(1) LIVE FIGURES): for the
        /// general information section, or `-j` with `-i` named; `-t` and
        /// scripts stay fast.
        var live: Bool

        init(_ args: ParsedArguments) {
            let named = args.occurrences(of: String(Section.allCases.map(\.rawValue))).compactMap { Section(rawValue: $0.letter) }
            sections = named.isEmpty ? [.info, .tree, .settings, .backend] : named
            json = args.has("j")
            libvirt = args.has("L")
            long = args.has("l")
            ascii = args.has("a")
            provenance = args.has("p")
            live = !libvirt && (json ? named.contains(.info) : sections.contains(.info))
        }
    }

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        let options = Options(args)
        let (global, resolver) = try context.loadGlobal(args)
        let sections = options.sections
        let console = context.console
        let operands = args.operands.isEmpty ? ["."] : args.operands
        var failed = false
        var documents: [JSON] = []
        var loaded: [(operand: String, vm: Result<ResolvedVM, VMToolsError>)] = []
        for operand in operands {
            do {
                let home = try VMHome.locate(operand, cwd: context.cwd, global: global)
                loaded.append((operand, .success(try resolver.loadVM(home: home, global: global))))
            } catch let e as VMToolsError {
                loaded.append((operand, .failure(e)))
            }
        }
        // One interval for all the running VMs, none for a stopped one; and
        // their guest agents asked at once (silent ones cost a second in all).
        var sampled: [String: QemuProcess] = [:]
        if !options.libvirt && (options.json || options.sections.contains(.info)) {
            let homes = loaded.compactMap { try? $0.vm.get().home }
            let running = homes.compactMap { h in RunningState.process(home: h, global: global).map { (home: h, process: $0) } }
            var processes = running.map(\.process)
            if options.live { processes = LiveFigures.sample(processes, pidName: global.fileNames.pid) }
            processes = QemuProcess.askingGuestAgents(processes, homes: running.map(\.home))
            for (k, p) in processes.enumerated() { sampled[running[k].home] = p }
            // A peer's unusable answer is one line; the report goes on (vminfo(1) EXIT STATUS).
            for (k, p) in processes.enumerated() {
                for bad in p.badAnswers {
                    failed = true
                    console.error(VMToolsError(.failure, running[k].home, bad.description))
                }
            }
        }
        for (operand, result) in loaded {
            do {
                let vm = try result.get()
                let home = vm.home
                // An unreadable child list (a FIFO, say) is reported, not taken
                // for an empty one; the rest of the report still helps.
                do { _ = try ChildList.read(home: home, global: global) } catch let e as VMToolsError {
                    failed = true
                    console.error(e)
                }
                if options.libvirt {
                    try printLibvirtDomain(vm, global: global, context: context)
                } else if options.json {
                    documents.append(VMReport(vm, parts: .json, sampled: sampled[home], global: global, environment: context.environment).json)
                } else {
                    report(vm, sampled: sampled[home], sections: sections, options: options, global: global, context: context)
                }
            } catch let e as VMToolsError {
                failed = true
                console.error(e)
                if options.json { documents.append(.object([("operand", .string(operand)), ("error", .string(e.description))])) }
            }
        }
        if options.json { console.printJSON(.array(documents)) }
        return failed ? .failure : .success
    }

    /// The text sections in command-line order, each from one report of the VM.
    static func report(_ vm: ResolvedVM, sampled: QemuProcess?, sections: [Section], options: Options, global: GlobalConfig,
                       context: Context) {
        let console = context.console
        let report = VMReport(vm, parts: .text(sections, long: options.long), sampled: sampled, global: global, environment: context.environment)
        let rule = String(repeating: "=", count: 70)
        console.print(rule)
        console.print("= \(vm.home)")
        console.print(rule)
        console.print()
        for section in sections {
            let dashes = String(repeating: "-", count: 70)
            console.print(dashes)
            console.print("- \(section.title)")
            console.print(dashes)
            console.print()
            report.lines(section, options).forEach { console.print($0) }
        }
    }

    /// The guest's addresses from its agent, or why there are none
    /// (vminfo(1), vm.settings(5) GUEST AGENT).
    static func guestAgentLine(_ status: GuestAgentStatus) -> String {
        switch status {
        case .noChannel: return "Guest agent: no agent channel (\(SettingKey.guestAgentEnable)=yes adds one at the next start)"
        case .notAnswering: return "Guest agent: not answering (install qemu-guest-agent in the guest)"
        case .badAnswer: return "Guest agent: gave an answer vmtools cannot use (reported on stderr)"
        case .answering(let list) where list.isEmpty: return "Guest addresses: none"
        case .answering: return "Guest addresses: \(status.addressesText.escapingControlCharacters)"
        }
    }
}
