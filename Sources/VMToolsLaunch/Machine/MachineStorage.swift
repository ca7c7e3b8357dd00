import VMToolsCore

extension Machine {
    /// The controller a drive really sits on (`settle` makes IDE SATA on q35).
    public enum Bus: String, Equatable, Sendable { case ide, sata, virtio, scsi }

    /// A hard disk (`vm_storage_hddN_*`), as `storage_hdd` attaches it.
    public struct Disk: Equatable, Sendable {
        public enum Source: Equatable, Sendable {
            case file(String)
            /// A remote location QEMU opens itself (`nbd:`, `iscsi://`, `http://`).
            case remote(String)
            /// A directory QEMU serves as a FAT disk (vvfat).
            case directory(String)
        }
        public var slot: Int
        /// The setting that names it (the backend, or the createsize of a new disk).
        public var setting: String
        public var source: Source
        /// nil where QEMU probes it (a remote disk).
        public var format: String?
        public var mode: VMSettings.DiskMode
        public var bus: Bus
        /// `index=` on its controller; nil on virtio (a read-only disk).
        public var index: Int?
        /// The disk is made by this start (a createsize).
        public var creating = false
        /// The backing files, nearest first, where known: a start takes them
        /// from the host-path check, which read the qcow2 headers; nil for an
        /// export, which reads no more than the image header it needs.
        public var backingChain: [String]?

        public var path: String? { if case .file(let p) = source { p } else { nil } }
    }

    /// A CD-ROM drive (`vm_storage_cdromN_*`), as `storage_cdrom` attaches it.
    public struct CDROM: Equatable, Sendable {
        public enum Source: Equatable, Sendable {
            case file(String)
            case remote(String)
            /// A directory packed into `iso` before each start.
            case packed(directory: String, iso: String)
        }
        public var slot: Int
        public var setting: String
        /// nil: an empty drive.
        public var source: Source?
        public var format: String?
        /// IDE (slots 1, 2: indices 2, 3) or virtio-scsi (slot 3 and up).
        public var bus: Bus
        public var index: Int
    }

    /// A volume vmup writes into the home and attaches read-only on SCSI.
    public struct Seed: Equatable, Sendable {
        public var setting: String
        public var path: String
        public var label: String
        /// A directory QEMU's TFTP server offers (a preseed file), not a volume.
        public var isDirectory = false
    }
}

extension Machine {
    /// Each disk's backing chain from the host paths a start collected (the
    /// backing file of each image, then of that one): no header is read again.
    mutating func readBackingChains(_ hostPaths: [HostPath]) {
        var backing: [String: String] = [:], collected: Set<String> = []
        for p in hostPaths where !p.isRaw {
            if let via = p.via {
                if via.kind == HostPath.Via.backingFile { backing[via.image] = p.path }
            } else {
                collected.insert(p.path)
            }
        }
        for i in disks.indices where !disks[i].creating {
            // A disk the check named otherwise keeps nil: not known, not "none".
            guard var image = disks[i].path, collected.contains(image) else { continue }
            var chain: [String] = []
            while let next = backing[image], !chain.contains(next), chain.count < 64 {
                chain.append(next)
                image = next
            }
            disks[i].backingChain = chain
        }
    }
}
