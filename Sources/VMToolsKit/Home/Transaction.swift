/// Undo actions for a multi-step change (commands.md §0.5): registered as
/// each step is made, run last-first if the change fails, dropped on commit.
public final class Transaction {
    private var undo: [(String, () -> Void)] = []
    private var committed = false

    public init() {}

    /// Registers how to undo the step just made.
    public func onRollback(_ what: String, _ action: @escaping () -> Void) {
        undo.append((what, action))
    }

    public func commit() {
        committed = true
        undo.removeAll()
    }

    public func rollback() {
        for (_, action) in undo.reversed() { action() }
        undo.removeAll()
    }

    deinit { if !committed { rollback() } }
}
