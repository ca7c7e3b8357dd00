#if canImport(Glibc)
import Glibc
#endif

/// A VM made elsewhere, given as one file (vmcreate(1) Imported appliances):
/// an `.ova` (tar of an OVF descriptor, its disks and a manifest), a plain
/// `.ovf` descriptor with its files beside it, or a VMware `.vmx`.
package struct Appliance: Sendable {
    /// What the descriptor says; nil for an `.ova` without one.
    package var descriptor: OVFDescriptor?
    /// The disks, in the VM's order.
    package var disks: [String]
    /// The private directory an `.ova` was unpacked into (the caller removes it).
    package var work: WorkDirectory?

    package enum Kind: String, Sendable { case ova, ovf, vmx }

    /// The kind of `path`, from its content (a tar archive) or its name and
    /// first bytes; `probe` is the file's, when the caller has it already.
    package static func kind(of path: String, probe: ImageProbe?? = nil) -> Kind? {
        guard let probe = probe ?? ImageProbe(path) else { return nil }
        if probe.kind == .tar, probe.isRegularFile { return .ova }
        let lower = path.lowercased()
        guard lower.hasSuffix(".ovf") || lower.hasSuffix(".vmx"), !probe.head.isEmpty else { return nil }
        let head = probe.head.prefix(4096)
        let text = String(decoding: head, as: UTF8.self)
        if lower.hasSuffix(".ovf") { return text.contains("<") ? .ovf : nil }
        // A .vmx is text: key = "value" lines; an image named .vmx is not one.
        return head.contains(0) ? nil : .vmx
    }

    package static func read(_ path: String, kind: Kind, unpackIn directory: String) throws -> Appliance {
        switch kind {
        case .ova: return try OVA.extract(path, in: directory)
        case .ovf: return try OVA.readDescriptor(path, in: path.deletingLastPathComponent)
        case .vmx: return try VMX.read(path)
        }
    }
}
