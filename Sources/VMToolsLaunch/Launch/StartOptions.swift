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
    /// The catalog names among the images (and a bare boot's), looked up
    /// and cached by `CatalogImages.resolve`; the first one's entry gives
    /// the VM its settings.
    package var catalog: [CatalogImage] = []

    package init() {}

    /// `[prefix]path` with the path made absolute (URLs kept as typed); a
    /// catalog name that no file or directory has is kept as typed
    /// (vmcreate(1), IMAGES BY NAME).
    package static func canonicalStorage(_ value: String, cwd: String, environment: [String: String]) throws -> String {
        let b = StorageBackend(value)
        if b.isRemote { return value }
        let path = try FileSystem.canonicalize(b.path(home: cwd, environment: environment), cwd: cwd)
        if CatalogImages.isLookup(b.location, path: path) { return value }
        return (b.prefix.map { $0 + ":" } ?? "") + path
    }
}
