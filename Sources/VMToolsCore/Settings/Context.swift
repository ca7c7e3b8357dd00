/// Everything a command may touch, injected so tests can redirect it.
public struct Context {
    public var environment: [String: String]
    public var cwd: String
    public var paths: SystemPaths
    public var console: Console
    public var stdin: Int32

    public init(environment: [String: String], cwd: String, paths: SystemPaths, console: Console, stdin: Int32 = 0) {
        self.environment = environment
        self.cwd = cwd
        self.paths = paths
        self.console = console
        self.stdin = stdin
    }
}
