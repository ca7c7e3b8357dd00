import VMToolsCore
import VMToolsQEMU

/// Candidates the completion scripts ask the binary for (`vmtools --list
/// KIND`): they depend on the configuration or on running processes, which a
/// shell script cannot work out by itself.
enum CompletionLists {
    static func list(_ kind: String, _ args: [String], paths: SystemPaths, environment: [String: String]) -> [String]? {
        switch kind {
        case "templates": return templates(paths: paths)
        case "running": return running(paths: paths)
        case "homes": return homes(prefix: args.first ?? "", cwd: FileSystem.currentDirectory(), paths: paths, environment: environment)
        case "images": return images(paths: paths)
        case "snapshots": return snapshots(of: args.first ?? "", cwd: FileSystem.currentDirectory(), paths: paths, environment: environment)
        default: return nil
        }
    }

    static func global(_ paths: SystemPaths) -> GlobalConfig? { try? SettingsResolver(paths: paths).loadGlobal() }

    /// Names of the `*.tpl` files in the template directories.
    static func templates(paths: SystemPaths) -> [String] {
        let includeUser = global(paths)?.includeUser ?? false
        var names = Set<String>()
        for dir in paths.templateDirectories(includeUser: includeUser) {
            for f in (try? FileSystem.listDirectory(dir)) ?? [] where f.hasSuffix(".tpl") {
                let name = String(f.dropLast(4))
                if SettingName.isTemplateName(name) { names.insert(name) }
            }
        }
        return names.sorted(by: bytewiseLess)
    }

    /// Names and aliases of the image catalog's entries (vmimage(1)); only
    /// names an operand may be taken for, so nothing else reaches the shell.
    static func images(paths: SystemPaths) -> [String] {
        let includeUser = global(paths)?.includeUser ?? false
        let entries = (try? ImageCatalog(paths: paths, includeUser: includeUser).entries()) ?? []
        return Set(entries.flatMap { [$0.name] + $0.aliases }).filter(ImageCatalog.isCandidateName).sorted(by: bytewiseLess)
    }

    /// The snapshots of the VM home `typed` (as the user typed it, `~/`
    /// too), for the operand after it (vmsnap(1)); nothing when it is not a
    /// VM home. Only names vmsnap accepts, so nothing else reaches the shell.
    static func snapshots(of typed: String, cwd: String, paths: SystemPaths, environment: [String: String]) -> [String] {
        guard !typed.isEmpty, !typed.hasPrefix("-"), let global = global(paths) else { return [] }
        var path = typed
        if path.hasPrefix("~/"), let home = environment["HOME"] { path = home + path.dropFirst(1) }
        guard let home = try? VMHome.locate(path, cwd: cwd, global: global),
              let vm = try? SettingsResolver(paths: paths).loadVM(home: home, global: global),
              let list = try? VMSnapshots(vm, environment: environment).list() else { return [] }
        return list.map(\.name).filter { (try? SnapshotName.check($0, home: home)) != nil }
    }

    /// Homes of the VMs running now.
    static func running(paths: SystemPaths) -> [String] {
        guard let global = global(paths) else { return [] }
        let pidFile = global.fileNames.pid
        return QemuProcess.all().compactMap { $0.home(pidFile: pidFile) }
            .filter { RunningState.process(home: $0, global: global) != nil }.sorted(by: bytewiseLess)
    }

    /// Directories below `prefix`'s directory whose name starts with its last
    /// part: VM homes as they are, other directories with a trailing `/` (to
    /// go down into them). Paths keep the form the user typed.
    static func homes(prefix: String, cwd: String, paths: SystemPaths, environment: [String: String]) -> [String] {
        let settingsName = global(paths)?.fileNames.settings ?? "vm.settings"
        let slash = prefix.lastIndex(of: "/")
        let typedDir = slash.map { String(prefix[...$0]) } ?? ""
        let start = slash.map { String(prefix[prefix.index(after: $0)...]) } ?? prefix
        var dir = typedDir.isEmpty ? cwd : typedDir
        if dir.hasPrefix("~/"), let home = environment["HOME"] { dir = home + dir.dropFirst(1) }
        if !dir.hasPrefix("/") { dir = cwd.appendingPathComponent(dir) }
        var out: [String] = []
        for name in ((try? FileSystem.listDirectory(dir)) ?? []).sorted(by: bytewiseLess) where name.hasPrefix(start) {
            if name.hasPrefix(".") && !start.hasPrefix(".") { continue }
            let path = dir.appendingPathComponent(name)
            guard FileSystem.isDirectory(path) else { continue }
            out.append(typedDir + name + (FileSystem.isRegularFile(path.appendingPathComponent(settingsName)) ? "" : "/"))
        }
        return out
    }
}
