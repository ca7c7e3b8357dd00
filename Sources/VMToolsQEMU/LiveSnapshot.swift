import VMToolsCore

#if canImport(Glibc)
import Glibc
#endif

/// Snapshots of a running VM over QMP (vmsnap(1), LIVE SNAPSHOTS): the
/// `snapshot-save`, `snapshot-load` and `snapshot-delete` jobs (QEMU ≥ 6.0).
/// The guest is paused only while QEMU writes its RAM and devices.
public struct LiveSnapshot {
    public let qmp: QMPClient
    /// The VM home, for errors.
    public let home: String

    public init(qmp: QMPClient, home: String) {
        self.qmp = qmp
        self.home = home
    }

    /// One block node as `query-named-block-nodes` lists it.
    public struct BlockNode: Sendable, Equatable {
        public var name: String
        public var driver: String
        public var readOnly: Bool
        /// The file it reads, canonical where it exists.
        public var file: String
        /// Its internal snapshots (`image.snapshots`).
        public var snapshots: [NodeSnapshot]
        public var tags: [String] { snapshots.map(\.name) }
    }

    public struct NodeSnapshot: Sendable, Equatable {
        public var name: String
        public var vmStateSize: UInt64
        /// Seconds since the epoch.
        public var date: Int64
    }

    /// Every named node QEMU has open (flat: backing files and protocol nodes too).
    public func blockNodes() throws -> [BlockNode] {
        let answer = try qmp.execute("query-named-block-nodes", arguments: [("flat", .bool(true))])
        return (answer.arrayValue ?? []).compactMap { n in
            guard let name = n["node-name"]?.stringValue, let driver = n["drv"]?.stringValue,
                  let file = n["file"]?.stringValue else { return nil }
            let snapshots = (n["image"]?["snapshots"]?.arrayValue ?? []).compactMap { t -> NodeSnapshot? in
                guard let tag = t["name"]?.stringValue else { return nil }
                return NodeSnapshot(name: tag, vmStateSize: UInt64(max(0, t["vm-state-size"]?.integerValue ?? 0)),
                                    date: Int64(t["date-sec"]?.integerValue ?? 0))
            }
            return BlockNode(name: name, driver: driver, readOnly: n["ro"] == .bool(true),
                             file: FileSystem.realPath(file) ?? file, snapshots: snapshots)
        }
    }

    /// Where QEMU has an image open: its writable qcow2 node, read-only
    /// (the VM runs with -s or -r), or not at all (a disabled disk).
    public enum Opening: Sendable, Equatable {
        case writable(BlockNode)
        case readOnly
        case closed
    }

    /// How QEMU has each image open, by path.
    public func openings(of images: [String]) throws -> [Opening] {
        let nodes = try blockNodes()
        return images.map { image in
            let path = FileSystem.realPath(image) ?? image
            let users = nodes.filter { $0.file == path }
            if let n = users.first(where: { $0.driver == "qcow2" && !$0.readOnly }) { return .writable(n) }
            return users.isEmpty ? .closed : .readOnly
        }
    }

    /// The writable block node of each image, by path: what the jobs name.
    /// Throws naming the image when QEMU does not have it open read-write
    /// (a VM started with -s or -r, or not with this disk).
    public func nodes(for images: [String]) throws -> [String] {
        try zip(images, openings(of: images)).map { image, opening in
            guard case let .writable(n) = opening else { throw notWritable(image) }
            return n.name
        }
    }

    /// The one-line refusal for an image QEMU cannot snapshot.
    public func notWritable(_ image: String) -> VMToolsError {
        VMToolsError(.failure, home, "cannot snapshot \(image) live: QEMU does not have it open for writing (the VM runs with its disks in snapshot mode (-s) or read-only (-r))")
    }

    /// Saves `tag` on every node, the RAM and devices in `vmstate`'s image.
    /// On a job error the tag is deleted again from the nodes that got it
    /// (QEMU leaves them so), then the error is reported.
    public func save(_ tag: String, vmstate: String, devices: [String], timeout: Double) throws {
        // QEMU refuses a tag a node holds: the clean-up below must never
        // delete a snapshot this call did not make.
        if let held = try blockNodes().first(where: { devices.contains($0.name) && $0.tags.contains(tag) }) {
            throw VMToolsError(.failure, home, "cannot save snapshot '\(tag)': \(held.file) holds one of that name")
        }
        do {
            try run("snapshot-save", [("tag", .string(tag)), ("vmstate", .string(vmstate)),
                                      ("devices", .array(devices.map { .string($0) }))], timeout: timeout)
        } catch let error as JobError {
            // QEMU leaves a failed save's tag on the nodes that got it.
            if error.concluded { try? delete(tag, devices: devices, timeout: timeout) }
            throw VMToolsError(.failure, home, "cannot save snapshot '\(tag)': \(error.message)")
        }
    }

    /// Loads `tag`: the VM resumes where it was saved (QEMU runs the guest
    /// again when it was running).
    public func load(_ tag: String, vmstate: String, devices: [String], timeout: Double) throws {
        do {
            try run("snapshot-load", [("tag", .string(tag)), ("vmstate", .string(vmstate)),
                                      ("devices", .array(devices.map { .string($0) }))], timeout: timeout)
        } catch let error as JobError {
            throw VMToolsError(.failure, home, "cannot load snapshot '\(tag)': \(error.message)")
        }
    }

    /// Deletes `tag` from every node that holds it (QEMU skips the others).
    public func delete(_ tag: String, devices: [String], timeout: Double) throws {
        do {
            try run("snapshot-delete", [("tag", .string(tag)), ("devices", .array(devices.map { .string($0) }))], timeout: timeout)
        } catch let error as JobError {
            throw VMToolsError(.failure, home, "cannot delete snapshot '\(tag)': \(error.message)")
        }
    }

    /// A job that concluded with an error (`concluded`), or that QEMU
    /// refused or that could not be followed to its end.
    struct JobError: Error {
        var message: String
        var concluded = false
    }

    /// Starts a job and follows it to its end: `query-jobs` after each
    /// event QEMU sends (a state change sends one), so the wait ends as the
    /// job does, without a sleep; a concluded job is dismissed.
    func run(_ command: String, _ arguments: [(String, JSON)], timeout: Double) throws {
        let id = Self.jobID()
        do {
            try qmp.execute(command, arguments: [("job-id", .string(id))] + arguments, timeout: timeout)
        } catch let e as VMToolsError {
            throw JobError(message: e.message)
        }
        let deadline = SystemClock.now() + timeout
        while true {
            let jobs: [JSON]
            do {
                // QEMU 7.2 saves and loads in its main loop, where the monitor
                // also answers: a big guest's RAM keeps any answer waiting that long.
                jobs = try qmp.execute("query-jobs", timeout: max(1, deadline - SystemClock.now())).arrayValue ?? []
            } catch let e as VMToolsError {
                throw JobError(message: e.message)
            }
            guard let job = jobs.first(where: { $0["id"]?.stringValue == id }) else {
                throw JobError(message: "QEMU lost its job \(id)")
            }
            if job["status"]?.stringValue == "concluded" {
                _ = try? qmp.execute("job-dismiss", arguments: [("id", .string(id))])
                if let why = job["error"]?.stringValue { throw JobError(message: why, concluded: true) }
                return
            }
            let left = deadline - SystemClock.now()
            // QEMU finishes the job without us: the snapshot may still appear.
            guard left > 0 else { throw JobError(message: "QEMU's \(command) did not finish within \(Int(timeout)) s (it goes on)") }
            do { _ = try qmp.awaitEvent(timeout: min(left, 1)) } catch let e as VMToolsError {
                throw JobError(message: e.message)
            }
        }
    }

    /// Unique per process and moment: several vmsnap may talk to one
    /// QEMU, and a job left running past its deadline keeps its id.
    static func jobID() -> String {
        "vmtools-snapshot-\(getpid())-\(Int64(SystemClock.now() * 1_000_000))"
    }
}
