import Foundation
import Testing
@testable import VMToolsCore

/// The qcow2 snapshot table reader (vmsnap(1) -l, vminfo): what it reads
/// agrees with qemu-img, and a hostile table is a clear error after a
/// bounded read.
@Suite struct Qcow2SnapshotTableTests {
    @discardableResult
    static func qemuImg(_ args: [String]) throws -> Subprocess.Result {
        let r = try Subprocess("/usr/bin/qemu-img", args).run()
        try #require(r.status == 0, "qemu-img \(args.joined(separator: " ")): \(r.stderrText)")
        return r
    }

    /// `qemu-img info`'s snapshots: its JSON form of `qemu-img snapshot -l`.
    static func qemuImgSnapshots(_ path: String) throws -> [[String: Any]] {
        let r = try qemuImg(["info", "--output=json", "-U", path])
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout)) as? [String: Any]
        return object?["snapshots"] as? [[String: Any]] ?? []
    }

    /// A snapshot with RAM and device state, as a running VM's: QEMU with no
    /// machine at all, paused, saves a few hundred bytes of vmstate.
    /// Every image gets the tag, the first the vmstate, as `savevm` does.
    static func saveVMState(_ tag: String, images: [String]) throws {
        let script = "savevm \(tag)\nquit\n"
        let fd = try Self.pipeReading(script)
        defer { close(fd) }
        let drives = images.enumerated().flatMap { ["-drive", "file=\($0.element),if=none,id=d\($0.offset),format=qcow2"] }
        let r = try Subprocess("/usr/bin/qemu-system-x86_64", ["-machine", "none", "-nodefaults", "-S", "-display", "none"]
                               + drives + ["-monitor", "stdio"]).run(input: fd)
        try #require(r.status == 0, "\(r.stderrText)")
    }

    /// The read end of a pipe holding `text` (small: it fits the pipe's buffer).
    static func pipeReading(_ text: String) throws -> Int32 {
        var fds: [Int32] = [-1, -1]
        try #require(pipe(&fds) == 0)
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { write(fds[1], $0.baseAddress, $0.count) }
        close(fds[1])
        return fds[0]
    }

    @Test(.requires("qemu-img", "qemu-system-x86_64"), arguments: ["1.1", "0.10"])
    func agreesWithQemuImg(compat: String) throws {
        guard requireTool("qemu-img") != nil, requireTool("qemu-system-x86_64") != nil else { return }
        let s = Scratch()
        let image = s.url("disk.qcow2")
        try Self.qemuImg(["create", "-q", "-f", "qcow2", "-o", "compat=\(compat)", image, "16M"])
        #expect(try Qcow2SnapshotTable.read(image) == [])
        #expect(ImageProbe(image)?.qcow2SnapshotCount == 0)
        let long = String(repeating: "n", count: SnapshotName.maxLength)
        for tag in ["first", "a", long] { try Self.qemuImg(["snapshot", "-c", tag, image]) }
        try Self.saveVMState("live-one", images: [image])
        try Self.qemuImg(["snapshot", "-c", "after.live", image])

        let ours = try Qcow2SnapshotTable.read(image)
        let theirs = try Self.qemuImgSnapshots(image)
        #expect(ours.map(\.name) == ["first", "a", long, "live-one", "after.live"])
        #expect(ours.map(\.name) == theirs.map { $0["name"] as? String ?? "?" })
        #expect(ours.map(\.id) == theirs.map { $0["id"] as? String ?? "?" })
        #expect(ours.map(\.date) == theirs.map { ($0["date-sec"] as? NSNumber)?.int64Value ?? -1 })
        #expect(ours.map(\.vmStateSize) == theirs.map { ($0["vm-state-size"] as? NSNumber)?.uint64Value ?? 1 })
        #expect(ours[3].vmStateSize > 0, "savevm stores RAM and devices")
        #expect(ours.filter { $0.name != "live-one" }.allSatisfy { $0.vmStateSize == 0 })
        let now = Int64(Date().timeIntervalSince1970)
        #expect(ours.allSatisfy { abs($0.date - now) < 600 })
        #expect(ImageProbe(image)?.qcow2SnapshotCount == 5)
        // Not qcow2: the probe has no count, the reader says what the file is not.
        let raw = s.url("disk.raw")
        try Self.qemuImg(["create", "-q", "-f", "raw", raw, "1M"])
        #expect(ImageProbe(raw)?.qcow2SnapshotCount == nil)
        let e = expectError { _ = try Qcow2SnapshotTable.read(raw) }
        #expect(e?.description == "\(raw): is not a qcow2 image (version 2 or 3)")
    }

    // MARK: Hand-made tables

    /// A qcow2 v3 header (only what the reader looks at) with `count` and
    /// `offset`, then `table` at `offset`, padded to `size` bytes.
    static func image(count: UInt32, offset: UInt64, table: [UInt8], size: Int? = nil) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 104)
        b.replaceSubrange(0..<4, with: [0x51, 0x46, 0x49, 0xFB])
        put(&b, 4, 3, 4)
        put(&b, 60, UInt64(count), 4)
        put(&b, 64, offset, 8)
        let start = Int(offset)
        if b.count < start { b += [UInt8](repeating: 0, count: start - b.count) }
        b += table
        if let size, b.count < size { b += [UInt8](repeating: 0, count: size - b.count) }
        return b
    }

    static func put(_ b: inout [UInt8], _ at: Int, _ value: UInt64, _ n: Int) {
        for i in 0..<n { b[at + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(n - 1 - i))) }
    }

    /// One table entry, padded to 8 bytes.
    static func entry(id: String, name: String, date: UInt32 = 1_700_000_000, vmState32: UInt32 = 0, extra: [UInt8] = [],
                      nameSize: Int? = nil, extraSize: UInt32? = nil) -> [UInt8] {
        var e = [UInt8](repeating: 0, count: 40)
        put(&e, 12, UInt64(id.utf8.count), 2)
        put(&e, 14, UInt64(nameSize ?? name.utf8.count), 2)
        put(&e, 16, UInt64(date), 4)
        put(&e, 32, UInt64(vmState32), 4)
        put(&e, 36, UInt64(extraSize ?? UInt32(extra.count)), 4)
        e += extra + Array(id.utf8) + Array(name.utf8)
        while e.count % 8 != 0 { e.append(0) }
        return e
    }

    static func bigEndian(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64(7 - $0))) } }

    @Test func readsHandMadeTables() throws {
        let s = Scratch()
        // The 64-bit vmstate size of the extra data wins over the 32-bit field.
        let big: UInt64 = 5 << 32 | 7
        let table = Self.entry(id: "1", name: "x", vmState32: 7, extra: Self.bigEndian(big) + Self.bigEndian(1 << 30))
            + Self.entry(id: "2", name: "stopped", date: 1_800_000_000)
        let path = try s.writeBytes("t.qcow2", Self.image(count: 2, offset: 512, table: table, size: 8192))
        let entries = try Qcow2SnapshotTable.read(path)
        #expect(entries == [Qcow2SnapshotTable.Entry(id: "1", name: "x", date: 1_700_000_000, vmClockNanos: 0, vmStateSize: big),
                            Qcow2SnapshotTable.Entry(id: "2", name: "stopped", date: 1_800_000_000, vmClockNanos: 0, vmStateSize: 0)])
    }

    @Test func refusesHostileTables() throws {
        let s = Scratch()
        func read(_ bytes: [UInt8]) throws -> VMToolsError? {
            let path = try s.writeBytes("h.qcow2", bytes)
            return expectError { _ = try Qcow2SnapshotTable.read(path) }
        }
        let one = Self.entry(id: "1", name: "ok")
        // More snapshots than QEMU allows, and more than the file holds.
        #expect(try read(Self.image(count: 0xFFFF_FFFF, offset: 512, table: one))?.message.contains("more than qemu allows") == true)
        #expect(try read(Self.image(count: 60000, offset: 512, table: one))?.message.contains("do not fit in the file") == true)
        // The table's offset beyond the file, unaligned, inside the header.
        for offset: UInt64 in [1 << 40, 515, 8] {
            var b = Self.image(count: 1, offset: 512, table: one)
            Self.put(&b, 64, offset, 8)
            #expect(try read(b)?.message.contains("lies outside the file") == true, "offset \(offset)")
        }
        // An entry whose name runs past the end of the file (truncated).
        let truncated = Self.image(count: 1, offset: 512, table: Array(Self.entry(id: "1", name: "ok", nameSize: 60000).prefix(48)))
        #expect(try read(truncated)?.message.contains("runs past the end of the file") == true)
        // A second entry cut off by the end of the file.
        let cut = Self.image(count: 2, offset: 512, table: one + Array(one.prefix(20)))
        #expect(try read(cut)?.message.contains("damaged qcow2 snapshot table") == true)
        // Extra data claiming 4 GiB.
        let extra = Self.image(count: 1, offset: 512, table: Self.entry(id: "1", name: "ok", extraSize: 0xFFFF_FFFF), size: 4096)
        #expect(try read(extra)?.message.contains("damaged qcow2 snapshot table") == true)
    }

    /// QEMU's maximum count with entries of 1 KiB each, in a sparse 128 MiB
    /// file: legal for QEMU, but beyond the reader's bound, which it
    /// refuses without reading it all.
    @Test func boundsTheTableItReads() throws {
        let s = Scratch()
        let path = s.url("big.qcow2")
        let header = Self.image(count: UInt32(Qcow2SnapshotTable.maximumCount), offset: 4096, table: [])
        try s.writeBytes("big.qcow2", header)
        let fd = open(path, O_WRONLY)
        try #require(fd >= 0)
        // Every entry: 40 bytes, 984 bytes of extra data, no id, no name.
        var e = [UInt8](repeating: 0, count: 40)
        Self.put(&e, 36, 984, 4)
        e += [UInt8](repeating: 0, count: 984)
        let block = Array([[UInt8]](repeating: e, count: 1024).joined())
        for i in 0..<8 { _ = block.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(4096 + i * block.count)) } }
        #expect(ftruncate(fd, 128 << 20) == 0)
        close(fd)
        let e2 = expectError { _ = try Qcow2SnapshotTable.read(path) }
        #expect(e2?.message.contains("beyond 4 MiB") == true, "\(String(describing: e2))")
        // 65536 empty entries (40 bytes each) fit the bound: read, not refused.
        try s.writeBytes("empty.qcow2", Self.image(count: 65536, offset: 4096, table: [], size: 4096 + 65536 * 40))
        #expect(try Qcow2SnapshotTable.read(s.url("empty.qcow2")).count == 65536)
    }
}
