import Testing
@testable import VMToolsCore

/// Snapshot names (vmsnap(1), NAMES): what QEMU's tags hold, a plain file
/// name in `snapshots/`, never a number qemu-img takes for an id.
@Suite struct SnapshotNameTests {
    @Test(arguments: ["before-upgrade", "a", "v1.2", "x_y+z", "A9", "1.0", "12a", "auto-merge-20261207-213700",
                      String(repeating: "z", count: 100)])
    func accepts(_ name: String) throws {
        #expect(SnapshotName.problem(name) == nil)
        try SnapshotName.check(name, home: "/vms/web")
    }

    @Test(arguments: [
        ("", "cannot be empty"), (String(repeating: "z", count: 101), "at most 100 characters"),
        ("a b", "only letters"), ("a/b", "only letters"), ("ä", "only letters"), ("a\nb", "only letters"),
        ("a,b", "only letters"), ("a:b", "only letters"), ("a=b", "only letters"),
        (".resume", "cannot start with '.'"), ("..", "cannot start with '.'"), ("-f", "cannot start with '-'"),
        ("1", "all digits"), ("0042", "all digits"),
    ])
    func refuses(_ name: String, _ why: String) {
        #expect(SnapshotName.problem(name)?.contains(why) == true, "\(name): \(SnapshotName.problem(name) ?? "accepted")")
        let e = expectError { try SnapshotName.check(name, home: "/vms/web") }
        #expect(e?.subject == "/vms/web")
        #expect(e?.message.hasPrefix("'\(name)': ") == true)
        #expect(e?.code == .failure)
    }
}
