import VMToolsCore

extension Machine {
    public struct Firmware: Equatable, Sendable {
        public var kind: VMSettings.Firmware = .bios
        /// OVMF's code file; nil for BIOS (or an export on a host without it).
        public var code: String?
        /// The VM's qcow2 variable store, and whether it exists already.
        public var vars: String?
        public var varsExist = false
        /// System management mode: Secure Boot's guard of its variables.
        public var smm = false
    }

    public struct TPM: Equatable, Sendable {
        public var version = "2.0"
        public var model = "tpm-crb"
        /// swtpm's state directory, and whether it exists already.
        public var stateDirectory: String
        public var stateExists: Bool
    }

    public struct NIC: Equatable, Sendable {
        /// The interface's number (`iface2` → `2`); QEMU's netdev is `nd2`.
        public var id: String
        /// QEMU's device (`e1000-82545em`, `virtio-net-pci`).
        public var device: String
        public var mode: NetworkModel
        /// The setting the mode comes from (the interface's or the default).
        public var modeSetting: String
        public var mac: String
        /// The VM fixes the MAC itself (else it is derived from the home).
        public var fixedMAC: Bool
        /// Including the implicit SSH forward of a cloud-init VM.
        public var forwards: [PortForward] = []
        /// QEMU's TFTP root on this interface (a preseed file).
        public var tftp: String?
    }

    /// The display QEMU really gets: SDL or GTK without a window is VNC.
    public struct Display: Equatable, Sendable {
        public enum Frontend: String, Equatable, Sendable { case none, sdl, gtk, vnc, spice }
        public enum Listen: Equatable, Sendable {
            /// A fixed port, or QEMU's (VNC) or the executor's (SPICE) choice from `lowest`.
            case tcp(iface: String, port: Int?, lowest: Int)
            case unix(String)
        }
        public enum Password: Equatable, Sendable {
            case none
            /// Made at each start into the run directory.
            case generated(String)
            /// A file of the user's, taken whole.
            case file(String)
        }
        public var frontend: Frontend = .none
        /// Why SDL or GTK fell back to VNC; nil when it did not.
        public var fallback: String?
        /// The graphics card (`-vga`); `none` for no card at all.
        public var device = "none"
        public var listen: Listen?
        public var password: Password = .none
        public var fullscreen = false
        /// QEMU's vdagent clipboard (or SPICE's own channel).
        public var clipboard = false
    }
}
