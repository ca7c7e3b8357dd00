import CSystem

#if canImport(Glibc)
import Glibc
#endif

/// Runs a program with an argument array (never a shell string), an explicit
/// environment and working directory. Both output pipes are drained together
/// with poll(2), so a chatty child can never block on a full pipe.
public struct Subprocess {
    public var executable: String
    public var arguments: [String]
    public var environment: [String: String]?
    public var workingDirectory: String?
    /// The child's umask, set only around the spawn itself: a process-wide
    /// umask held longer would reach files other threads make meanwhile.
    public var umask: mode_t?
    /// For `run`: a Ctrl-C or SIGTERM held pending (`Interrupt`) ends the
    /// child (SIGTERM), so a long conversion stops for the rollback at once.
    /// Off for what a rollback itself runs.
    public var endsOnInterrupt = false

    public struct Result: Sendable {
        /// The exit status, or 128 + the signal that killed the child.
        public var status: Int32
        public var stdout: [UInt8]
        public var stderr: [UInt8]
        public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
        public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
    }

    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, workingDirectory: String? = nil) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
    }

    /// Finds `name` in `PATH` (names with a slash are taken as they are).
    public static func which(_ name: String, path: String?) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        for dir in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let candidate = String(dir).appendingPathComponent(name)
            if access(candidate, X_OK) == 0, !FileSystem.isDirectory(candidate) { return candidate }
        }
        return nil
    }

    /// Runs with the caller's terminal as stdin/stdout/stderr (QEMU in the
    /// foreground) and returns the exit status. `diesWithParent`: a tool
    /// (qemu-img with its progress meter) that must not outlive us; never
    /// QEMU, which a daemonised start leaves running.
    public func runInteractive(diesWithParent: Bool = false) throws -> Int32 {
        if diesWithParent { return Self.wait(try spawnTool(stdin: -1, stdout: -1, stderr: -1)) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let dir = workingDirectory { csystem_spawn_addchdir(&actions, dir) }
        let pid = try spawn(&actions)
        return Self.wait(pid)
    }

    /// Runs with the caller's stdin and stderr (so it can prompt and
    /// report) and returns its exit status and everything it printed on stdout.
    /// Like `run`, the child dies with us.
    public func runCapturingStdout() throws -> (status: Int32, stdout: [UInt8]) {
        var pipe: [Int32] = [-1, -1]
        guard csystem_pipe2_cloexec(&pipe) == 0 else {
            throw VMToolsError(.failure, executable, "cannot create a pipe: \(FileSystem.errnoMessage())")
        }
        let pid: pid_t
        do {
            pid = try spawnTool(stdin: -1, stdout: pipe[1], stderr: -1)
        } catch {
            close(pipe[0])
            close(pipe[1])
            throw error
        }
        close(pipe[1])
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(pipe[0], $0.baseAddress, $0.count) }
            if n > 0 { out.append(contentsOf: chunk[0..<n]) } else if n == 0 || errno != EINTR { break }
        }
        close(pipe[0])
        return (Self.wait(pid), out)
    }

    /// Runs a tool to its end, its stdin from `input` (an open descriptor)
    /// or /dev/null. We wait for it, so it is never meant to outlive us: it
    /// is killed when we die (a `qemu-img` left converting after vmcreate
    /// was killed would hold the disk and the CPU).
    public func run(input: Int32? = nil) throws -> Result {
        try Self.collect([try startPiped(input: input)])[0]
    }

    /// Runs tools side by side, each as `run` would (stdin /dev/null), and
    /// returns when all have ended: n short `qemu-img` calls cost about the
    /// longest one, not their sum. A child that cannot start ends those
    /// already started (SIGTERM) before the error is thrown.
    public static func runAll(_ tools: [Subprocess]) throws -> [Result] {
        var started: [Piped] = []
        do {
            for t in tools { started.append(try t.startPiped(input: nil)) }
        } catch {
            for p in started { kill(p.pid, SIGTERM) }
            _ = collect(started)
            throw error
        }
        return collect(started)
    }

    /// A child whose stdout and stderr come through pipes (read ends here).
    struct Piped {
        var pid: pid_t
        var out: Int32
        var err: Int32
        var endsOnInterrupt: Bool
    }

    func startPiped(input: Int32?) throws -> Piped {
        var outPipe: [Int32] = [-1, -1]
        var errPipe: [Int32] = [-1, -1]
        guard csystem_pipe2_cloexec(&outPipe) == 0, csystem_pipe2_cloexec(&errPipe) == 0 else {
            throw VMToolsError(.failure, executable, "cannot create a pipe: \(FileSystem.errnoMessage())")
        }
        let null = input == nil ? open("/dev/null", O_RDONLY | O_CLOEXEC) : -1
        defer { if null >= 0 { close(null) } }
        let pid: pid_t
        do {
            pid = try spawnTool(stdin: input ?? null, stdout: outPipe[1], stderr: errPipe[1])
        } catch {
            close(outPipe[1])
            close(errPipe[1])
            close(outPipe[0])
            close(errPipe[0])
            throw error
        }
        close(outPipe[1])
        close(errPipe[1])
        return Piped(pid: pid, out: outPipe[0], err: errPipe[0], endsOnInterrupt: endsOnInterrupt)
    }

    /// Drains every child's two pipes together with poll(2), then reaps them.
    static func collect(_ children: [Piped]) -> [Result] {
        var out = [[UInt8]](repeating: [], count: children.count)
        var err = [[UInt8]](repeating: [], count: children.count)
        var fds: [pollfd] = children.flatMap { [pollfd(fd: $0.out, events: Int16(POLLIN), revents: 0),
                                                pollfd(fd: $0.err, events: Int16(POLLIN), revents: 0)] }
        var chunk = [UInt8](repeating: 0, count: 65536)
        var forwarded = false
        let interruptible = children.contains { $0.endsOnInterrupt }
        while fds.contains(where: { $0.fd >= 0 }) {
            if interruptible, !forwarded, Interrupt.pending() != nil {
                for c in children where c.endsOnInterrupt { kill(c.pid, SIGTERM) }
                forwarded = true
            }
            if poll(&fds, nfds_t(fds.count), interruptible && !forwarded ? 250 : -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            for k in fds.indices where fds[k].fd >= 0 && fds[k].revents != 0 {
                let n = chunk.withUnsafeMutableBytes { read(fds[k].fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    if k % 2 == 0 { out[k / 2].append(contentsOf: chunk[0..<n]) } else { err[k / 2].append(contentsOf: chunk[0..<n]) }
                } else if n == 0 || errno != EINTR {
                    close(fds[k].fd)
                    fds[k].fd = -1
                }
            }
        }
        return children.indices.map { Result(status: wait(children[$0].pid), stdout: out[$0], stderr: err[$0]) }
    }

    /// A child left running (a helper beside QEMU): stdin from /dev/null,
    /// output on ours, or appended to `output` (one that outlives us must not
    /// hold our stderr: a pipe reading it would wait for it).
    public struct Running: Sendable {
        public var pid: pid_t
        /// SIGTERM, then reaps it.
        public func terminate() {
            kill(pid, SIGTERM)
            _ = Subprocess.wait(pid)
        }

        /// Its exit status if it has exited (reaped), else nil.
        public func exitStatus() -> Int32? {
            var status: Int32 = 0
            guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
            return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        }
    }

    /// `output`: a file (made 0600, emptied) its stdout and stderr go to
    /// instead of ours, for a child that outlives our terminal or pipe.
    public func start(output: String? = nil) throws -> Running {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if let output {
            posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_NOFOLLOW, 0o600)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        if let dir = workingDirectory { csystem_spawn_addchdir(&actions, dir) }
        return Running(pid: try spawn(&actions))
    }

    static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// A child that gets SIGKILL when we die (`csystem_spawn_tool`): the
    /// same descriptors, directory, umask and clean signal state as `spawn`.
    func spawnTool(stdin: Int32, stdout: Int32, stderr: Int32) throws -> pid_t {
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let envList: [UnsafeMutablePointer<CChar>?]? = environment.map { env in
            env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        }
        defer { envList?.forEach { free($0) } }
        let callerUmask = umask.map { Glibc.umask($0) }
        defer { if let callerUmask { Glibc.umask(callerUmask) } }
        let pid: pid_t = argv.withUnsafeBufferPointer { a in
            func go(_ env: UnsafePointer<UnsafeMutablePointer<CChar>?>?, _ dir: UnsafePointer<CChar>?) -> pid_t {
                var io = csystem_child_io(stdin_fd: stdin, stdout_fd: stdout, stderr_fd: stderr, directory: dir)
                return csystem_spawn_tool(executable, a.baseAddress, env, &io)
            }
            func inDirectory(_ env: UnsafePointer<UnsafeMutablePointer<CChar>?>?) -> pid_t {
                guard let workingDirectory else { return go(env, nil) }
                return workingDirectory.withCString { go(env, $0) }
            }
            guard let envList else { return inDirectory(environ) }
            return envList.withUnsafeBufferPointer { inDirectory($0.baseAddress) }
        }
        guard pid > 0 else { throw VMToolsError(.failure, executable, "cannot run: \(FileSystem.errnoMessage(-pid))") }
        return pid
    }

    private func spawn(_ actions: inout posix_spawn_file_actions_t) throws -> pid_t {
        // Nothing but stdio is inherited: a daemonised QEMU would otherwise
        // keep our caller's descriptors (pipes, sockets) open for its lifetime,
        // and a parent waiting for their end-of-file would wait forever.
        csystem_spawn_addclosefrom(&actions, 3)
        // A clean signal state: a parent thread's blocked or ignored signals
        // must not leak into the child (QEMU would never see SIGTERM).
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let envList: [UnsafeMutablePointer<CChar>?]? = environment.map { env in
            env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        }
        defer { envList?.forEach { free($0) } }

        var pid: pid_t = 0
        let callerUmask = umask.map { Glibc.umask($0) }
        defer { if let callerUmask { Glibc.umask(callerUmask) } }
        let rc: Int32 = argv.withUnsafeBufferPointer { a in
            if let envList {
                return envList.withUnsafeBufferPointer { e in
                    posix_spawn(&pid, executable, &actions, &attr, UnsafeMutablePointer(mutating: a.baseAddress!),
                                UnsafeMutablePointer(mutating: e.baseAddress!))
                }
            }
            return posix_spawn(&pid, executable, &actions, &attr, UnsafeMutablePointer(mutating: a.baseAddress!), environ)
        }
        guard rc == 0 else { throw VMToolsError(.failure, executable, "cannot run: \(FileSystem.errnoMessage(rc))") }
        return pid
    }
}
