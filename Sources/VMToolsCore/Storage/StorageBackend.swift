#if canImport(Glibc)
import Glibc
#endif

/// Storage backend values (vm.settings(5) MEANING): `[rw:|snap:|ro:]location`.
public struct StorageBackend: Sendable, Equatable {
    public var prefix: String?
    public var location: String

    public init(_ value: String) {
        for p in ["rw", "snap", "ro"] where value.hasPrefix(p + ":") {
            prefix = p
            location = String(value.dropFirst(p.count + 1))
            return
        }
        prefix = nil
        location = value
    }

    /// URLs (`proto://…`, `nbd:…`) go to QEMU's own drivers untouched.
    public var isRemote: Bool {
        if location.lowercased().hasPrefix("nbd:") { return true }
        guard let r = location.firstRange(of: "://") else { return false }
        let scheme = location[..<r.lowerBound]
        return !scheme.isEmpty && scheme.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "+.-".contains($0)) }
    }

    /// The local path: `~/` expanded, relative paths taken from the VM home.
    public func path(home: String?, environment: [String: String]) -> String {
        var l = location
        if l.hasPrefix("~/"), let h = environment["HOME"] { l = h.appendingPathComponent(String(l.dropFirst(2))) }
        if !l.hasPrefix("/"), let home { l = home.appendingPathComponent(l) }
        return l
    }
}
