import VMToolsCore
import VMToolsQEMU

/// Takes, reverts and deletes a VM's named snapshots (vmsnap(1)): every
/// image of the VM, the TPM state (`snapshots/NAME/tpm/`) and, for a running
/// VM, its RAM and devices, all or nothing (journaled, `vmfix -b`).
/// The caller holds the VM's lock.
public struct Snapshotter {
    public let vm: ResolvedVM
    public let global: GlobalConfig
    public let environment: [String: String]
    public let console: Console
    public var snapshots: VMSnapshots

    public init(vm: ResolvedVM, global: GlobalConfig, environment: [String: String], console: Console) {
        self.vm = vm
        self.global = global
        self.environment = environment
        self.console = console
        self.snapshots = VMSnapshots(vm, environment: environment)
    }

    /// Saves snapshot `name` (live when the VM runs); `replace` deletes an
    /// existing one of that name first (`-f`).
    @discardableResult
    public func create(_ name: String, replace: Bool = false) throws -> Snapshot {
        throw VMToolsError(.failure, vm.home, "taking snapshots is not implemented yet")
    }

    /// Puts the VM back to `name`: live on a running VM (a live snapshot
    /// only); on a stopped one the images and TPM, and the next `vmup`
    /// resumes the saved RAM of a live snapshot.
    public func revert(_ name: String) throws {
        throw VMToolsError(.failure, vm.home, "reverting snapshots is not implemented yet")
    }

    public func delete(_ name: String) throws {
        throw VMToolsError(.failure, vm.home, "deleting snapshots is not implemented yet")
    }

    /// A snapshot taken by vmtools itself (`vm_snapshot_auto`):
    /// `auto-WHY-YYYYMMDD-HHMMSS`, on a stopped VM.
    @discardableResult
    public func createAutomatic(_ why: SnapshotAuto) throws -> Snapshot {
        throw VMToolsError(.failure, vm.home, "automatic snapshots are not implemented yet")
    }
}
