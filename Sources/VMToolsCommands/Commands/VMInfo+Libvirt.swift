import VMToolsCore
import VMToolsLaunch

/// `vminfo -L` (vminfo(1)): the libvirt domain of the machine a start would
/// run; what libvirt cannot express is noted on stderr.
extension VMInfoCommand {
    static func printLibvirtDomain(_ vm: ResolvedVM, global: GlobalConfig, context: Context) throws {
        let domain = try LibvirtDomain(vm, accelerator: try ExportPlan.accelerator(vm.settings), global: global, environment: context.environment)
        domain.notes.forEach { context.console.note($0) }
        context.console.printXML(domain.xml)
    }
}
