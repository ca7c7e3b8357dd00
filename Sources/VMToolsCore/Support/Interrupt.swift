import CSystem

#if canImport(Glibc)
import Glibc
#endif

/// Ctrl-C and friends for commands that change VM trees (vmtools(7) CRASH SAFETY).
///
/// The signals are blocked rather than handled: a blocked signal stays
/// pending, and the command looks for it between steps, then rolls back in
/// ordinary code (no async-signal-safety traps). Children start with a clean
/// mask, so a `qemu-img` in the foreground still dies on Ctrl-C, and its
/// failure starts the same rollback.
public enum Interrupt {
    static let signals: [Int32] = [SIGINT, SIGTERM, SIGQUIT, SIGHUP]

    public static func block() {
        var set = sigset_t()
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        sigprocmask(SIG_BLOCK, &set, nil)
    }

    /// The pending signal, if one arrived.
    public static func pending() -> Int32? {
        var set = sigset_t()
        sigemptyset(&set)
        guard sigpending(&set) == 0 else { return nil }
        return signals.first { sigismember(&set, $0) == 1 }
    }

    /// Runs `body` with the signals blocked, so that one arriving meanwhile
    /// (passed on to a child run with `Subprocess.endsOnInterrupt`) lets `body`
    /// undo its work before this throws; the signal then stays blocked and
    /// the command ends with its error. Without a signal the caller's mask
    /// comes back (a foreground QEMU started later keeps Ctrl-C's meaning).
    public static func deferring<T>(_ body: () throws -> T) throws -> T {
        var set = sigset_t(), old = sigset_t()
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        sigprocmask(SIG_BLOCK, &set, &old)
        let result: T
        do {
            result = try body()
        } catch {
            try check()
            sigprocmask(SIG_SETMASK, &old, nil)
            throw error
        }
        try check()
        sigprocmask(SIG_SETMASK, &old, nil)
        return result
    }

    /// Throws when a signal is pending: the caller's transaction rolls back.
    public static func check() throws {
        if let s = pending() {
            throw VMToolsError(.failure, nil, "interrupted by signal \(s); the changes made so far were undone")
        }
    }
}
