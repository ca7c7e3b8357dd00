import VMToolsCore

/// What `vmup` and `vmcreate` take from their shared options (vmup(1)): the
/// settings and images of a `LaunchRequest`.
package struct StartOptions {
    package var commandLine = CommandLineSettings()
    /// `-c`/`-C` and `-d`/`-D` images, in order, placed into free slots once
    /// the VM's own settings are known.
    package var disks: [String] = []
    package var cdroms: [String] = []
    package var dryRun = false

    package init() {}

    /// `[prefix]path` with the path made absolute (URLs kept as typed).
    package static func canonicalStorage(_ value: String, cwd: String, environment: [String: String]) throws -> String {
        let b = StorageBackend(value)
        if b.isRemote { return value }
        let path = try FileSystem.canonicalize(b.path(home: cwd, environment: environment), cwd: cwd)
        return (b.prefix.map { $0 + ":" } ?? "") + path
    }
}
