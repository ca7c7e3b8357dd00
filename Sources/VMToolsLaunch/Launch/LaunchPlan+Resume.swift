import VMToolsCore

/// Resuming a reverted live snapshot at the next start (vmsnap(1),
/// RESUMING; vmup(1)): `vmsnap -r` of a stopped VM puts its disks back and
/// names the snapshot in `snapshots/.resume`; QEMU's `-loadvm` then loads
/// the RAM and devices saved in the first disk before the guest runs, so
/// the guest goes on from the snapshot instead of booting.
extension LaunchPlan {
    /// With the disks in snapshot mode or read-only (`-s`, `-r`) QEMU has
    /// no writable image to load from: such a start boots, and the marker
    /// stays for the next read-write one.
    mutating func resume(_ marker: ResumeMarker, mode: VMSettings.DiskMode) {
        if let name = marker.name, mode != .rw {
            notices.append("not resuming snapshot \(name) with the disks in \(mode == .ro ? "read-only" : "snapshot") mode: the guest boots; the next read-write start resumes it")
            return
        }
        resume = marker
        // The option takes the whole value as the name: nothing to escape.
        if let name = marker.name { argv += ["-loadvm", name] }
    }

    /// The snapshot a start resumes, if any.
    public var resumedSnapshot: String? { resume?.name }
}

extension ResumeMarker {
    /// `vmup -n`'s line.
    var dryRunLine: String {
        if let name { return "would resume the RAM and devices saved in snapshot \(name)" }
        return "would ignore and remove \(path): \(problem ?? "not a snapshot name")"
    }
}

extension LaunchExecutor {
    /// A failed start that was to resume a snapshot says where the disks are.
    func resumeFailure(_ error: Error) -> Error {
        guard let name = plan.resumedSnapshot, let e = error as? VMToolsError else { return error }
        return VMToolsError(e.code, e.subject, e.message + "; the disks are at snapshot \(name), and the next vmup boots them afresh")
    }
}
