import VMToolsCore
import VMToolsQEMU

/// Settings → plan: the accelerator and the buildcmd modules, nothing
/// written, nothing probed (Docs/ARCHITECTURE.md). External modules are the
/// user's code and run here, told `VMTOOLS_DRY_RUN` (vmtools(7)).
package enum LaunchPlanner {
    /// The host paths a start hands to the guest, collected once, and the
    /// refusals among them (vm.settings(5), HOST PATHS): one error a path.
    package struct HostPathCheck {
        package var paths: [HostPath]
        package var refusals: [VMToolsError]
    }

    /// Refuses, before anything is planned, the host paths a VM's own
    /// settings may not hand to the guest.
    package static func checkHostPaths(_ vm: ResolvedVM, global: GlobalConfig, environment: [String: String]) throws -> HostPathCheck {
        let policy = try HostPathPolicy(vm: vm, global: global, environment: environment)
        let paths = HostPaths.collect(vm.settings, home: vm.home, environment: environment)
        return HostPathCheck(paths: paths, refusals: policy.errors(policy.refused(paths), home: vm.home, global: global)
            + HostPathPolicy.commandLineImageErrors(paths, allow: policy.allow, imageCaches: policy.imageCaches))
    }

    /// A bare boot's or a new VM's settings come from the user alone; the
    /// images named on the command line may still name files (vm.settings(5), HOST PATHS).
    package static func checkBareHostPaths(_ settings: SettingsTable, home: String? = nil, global: GlobalConfig,
                                           environment: [String: String]) throws -> HostPathCheck {
        let paths = HostPaths.collect(settings, home: home, environment: environment)
        return HostPathCheck(paths: paths, refusals: HostPathPolicy.commandLineImageErrors(paths, allow: try global.hostPathAllowList(),
                                                                                             imageCaches: HostPathPolicy.imageCaches(environment: environment)))
    }

    /// `runDirectory` is where the pid file and sockets go (the home, or a
    /// run-time directory for a bare boot or a read-only home); `hostPaths`
    /// are those its check collected, for `vmup -n` to list; `conversions`
    /// the configuration's imports, the plan's first steps (the storage
    /// modules plan the disks they make); `resume`: a home's start, which
    /// resumes the live snapshot its `snapshots/.resume` names.
    package static func plan(_ settings: SettingsTable, home: String?, runDirectory: String?, children: [String], global: GlobalConfig,
                     hostPaths: [HostPath], conversions: [LaunchPlan.Conversion] = [], resume: Bool = false,
                     dryRun: Bool, context: Context) throws -> QemuCommand {
        let accel = try Accelerator.choose(settings)
        var command = QemuCommand(settings: settings, home: home, global: global, environment: context.environment,
                                  accelerator: accel, children: children, dryRun: dryRun)
        command.runDirectory = runDirectory ?? home
        command.plan.conversions = conversions
        if accel.fellBack { command.notices.append("KVM is not usable (\(accel.reason)): using TCG, where -cpu host becomes -cpu max") }
        try command.build(ModuleRegistry.buildcmdModules(settings, paths: global.paths, console: context.console))
        command.plan.hostPaths = hostPaths
        command.plan.machine.readBackingChains(hostPaths)
        if resume, let home, let marker = ResumeMarker.read(home: home) {
            command.plan.resume(marker, mode: try VMSettings(settings).rwMode())
        }
        return command
    }
}
