import VMToolsCore
import VMToolsLaunch

/// A VM's named snapshots in vminfo(1) (vmsnap(1)): the general section's
/// `Snapshot:` lines, `-j`'s `snapshots` and the tree's `S` mark. vminfo's
/// speed is benchmarked, so the qcow2 headers' snapshot counts are read
/// first and a table only when a header counts some.
extension VMReport {
    /// The snapshots of `vm`, oldest first, or why they cannot be read.
    static func snapshots(_ vm: ResolvedVM, environment: [String: String]) -> Result<[Snapshot], Failure> {
        Result { try VMSnapshots(vm, environment: environment).listIfAny() }.mapError(Failure.init)
    }

    /// The tree's `S`: a header of the VM's own file's disks, or of its
    /// variable store, counts a snapshot (vminfo(1) -t). Only the VM's own
    /// file is read there, as for its name.
    static func hasSnapshots(home: String, file: VMSettingsFile, environment: [String: String]) -> Bool {
        for (name, value) in file.assignments where SettingName.isStorageBackend(name) && name.hasPrefix(SettingKey.hddPrefix) && !value.isEmpty {
            let b = StorageBackend(value)
            guard !b.isRemote, b.prefix == nil || b.prefix == "rw" else { continue }
            if VMSnapshots.headerCount(b.path(home: home, environment: environment)) > 0 { return true }
        }
        return VMSnapshots.headerCount(home.appendingPathComponent(VMFileNames.firmwareVars)) > 0
    }

    /// `Snapshot: NAME (DATE, STATE, vmstate SIZE)`, one line each.
    func snapshotLines() -> [String] {
        switch snapshots {
        case nil: return []
        case .success(let list)?:
            return list.map { s in
                var facts = [VMSnapCommand.localDate(s.date), s.complete ? (s.live ? "live" : "stopped") : "incomplete: on \(s.disks.joined(separator: " ")) only"]
                if s.live { facts.append("vmstate \(Formatting.bytes(s.vmStateSize))") }
                if s.tpm { facts.append("tpm") }
                return "Snapshot: \(s.name.escapingControlCharacters) (\(facts.joined(separator: ", ")))"
            }
        case .failure(let f)?: return ["Snapshot: ? (\(f.message.escapingControlCharacters))"]
        }
    }

    /// vminfo -j's `snapshots`: vmsnap -l -j's objects (vmsnap(1)).
    var snapshotsJSON: JSON {
        Self.factJSON(snapshots) { .array($0.map(\.json)) }
    }
}
