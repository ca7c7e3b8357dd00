/// Finding VM homes from what the user typed.
public enum VMHome {
    /// The canonical home for an operand: a directory holding the settings
    /// file, or the settings file itself. No operand means the current directory.
    public static func locate(_ operand: String?, cwd: String, global: GlobalConfig) throws -> String {
        let given = operand ?? "."
        let settingsName = global.fileNames.settings
        var path = try FileSystem.canonicalize(given, cwd: cwd)
        if !FileSystem.isDirectory(path), path.lastPathComponent == settingsName {
            path = path.deletingLastPathComponent
        }
        guard FileSystem.exists(path) else {
            throw VMToolsError(.failure, given, "no such file or directory")
        }
        guard FileSystem.isDirectory(path) else {
            throw VMToolsError(.failure, path, "not a VM home (not a directory)")
        }
        try VMSettingsFile.refuseLink(path.appendingPathComponent(settingsName))
        guard FileSystem.isRegularFile(path.appendingPathComponent(settingsName)) else {
            throw VMToolsError(.failure, path, "not a VM home (no \(settingsName))")
        }
        return path
    }

    public static func isHome(_ dir: String, global: GlobalConfig) -> Bool {
        FileSystem.isRegularFile(global.settingsPath(in: dir))
    }
}
