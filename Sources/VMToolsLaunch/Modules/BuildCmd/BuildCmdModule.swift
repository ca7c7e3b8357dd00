import VMToolsCore
import VMToolsQEMU

/// A buildcmd module turns resolved settings into QEMU arguments and plan
/// entries (vmtools(7), MODULES). Modules run in the order of
/// `cfg_modules_buildcmd`; they read, never write: a disk to create or a
/// socket to remove goes into the plan (Docs/ARCHITECTURE.md). Nothing is
/// ever joined into a shell string.
public protocol BuildCmdModule: Sendable {
    static var name: String { get }
    static func build(_ command: inout QemuCommand) throws
}

/// The command being built, and what the modules read to build it.
public struct QemuCommand {
    public var settings: SettingsTable
    /// The canonical VM home; nil for a bare image or ISO boot.
    public var home: String?
    /// Where the pid file and sockets go, QEMU's working directory: the home,
    /// or for a bare boot or a read-only home its `RuntimeDirectory`.
    public var runDirectory: String?
    public var global: GlobalConfig
    public var environment: [String: String]
    public var accelerator: Accelerator
    /// Children of the VM (its `childs.lst`): they forbid read-write disks.
    public var children: [String]
    /// With `-n`: the plan is only printed. Modules never touch the system
    /// either way; this changes notices only (and tells external modules).
    public var dryRun: Bool
    /// Planned for an export (`ExportPlan`): the machine is described for
    /// another host, so this host's helpers, firmware files and password
    /// file are not required.
    public var export = false
    /// What the modules build: argv, notices, files to prepare, facts to read back.
    public var plan = LaunchPlan()
    public var argv: [String] {
        get { plan.argv }
        set { plan.argv = newValue }
    }
    public var notices: [String] {
        get { plan.notices }
        set { plan.notices = newValue }
    }

    public init(settings: SettingsTable, home: String?, global: GlobalConfig, environment: [String: String],
                accelerator: Accelerator, children: [String] = [], dryRun: Bool = false) {
        self.settings = settings
        self.home = home
        self.runDirectory = home
        self.global = global
        self.environment = environment
        self.accelerator = accelerator
        self.children = children
        self.dryRun = dryRun
    }

    /// The settings, typed and validated (`VMSettings`).
    public var vm: VMSettings { VMSettings(settings) }
    public var daemonize: Bool { vm.daemonize }

    public mutating func append(_ args: String...) { argv += args }

    /// An error about a setting, naming where its value came from.
    public func invalid(_ name: String, _ why: String) -> VMToolsError { vm.invalid(name, why) }

    /// Runs every module of the list in order.
    public mutating func build(_ modules: [any BuildCmdModule.Type]) throws {
        for m in modules { try m.build(&self) }
        plan.machine.settle()
    }

    /// Runs the modules a list chose, built-in or external, in order. An
    /// external one gets the arguments so far and prints those to append.
    public mutating func build(_ modules: [ModuleChoice]) throws {
        for m in modules {
            guard let ext = m.external else {
                try ModuleRegistry.buildcmd[m.name]!.build(&self)
                continue
            }
            let lines = try ext.run(settings: settings, home: home, environment: environment,
                                    extra: ["VMTOOLS_QEMU_ARGV": plan.preview.argv.joined(separator: "\n"), "VMTOOLS_DRY_RUN": dryRun ? "yes" : "no"])
            argv += lines.filter { !$0.isEmpty }
        }
        plan.machine.settle()
    }
}

/// `,` doubled: the escape for a user value inside a QEMU sub-option.
public func qemuEscape(_ s: String) -> String { s.replacingAll(",", with: ",,") }
