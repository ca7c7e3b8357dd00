#if canImport(Glibc)
import Glibc
#endif

/// What a `vm.settings` holds when it is written (vm.settings(5) WRITING): the
/// parent, the templates, the name, and the *settings list* — the values set
/// explicitly for this VM, in the order they were set.
public struct SettingsDocument: Equatable, Sendable {
    public struct Entry: Equatable, Sendable {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    /// Why the file was written ("initial creation", "forked from …").
    public var comment: String
    public var parent: String?
    public var templates: [String]
    public var name: String
    public var entries: [Entry]
    /// Initial disk sizes, shown in the `# HDD N` comment only: a stored
    /// `createsize` would recreate the disk at every start.
    public var initialSizes: [Int: String]
    /// A new VM's installation medium is written commented out, so it is
    /// not inserted again at the next start; a rewritten file keeps its media.
    public var ejectMedia = true

    public init(comment: String, parent: String? = nil, templates: [String] = [], name: String,
                entries: [Entry] = [], initialSizes: [Int: String] = [:]) {
        self.comment = comment
        self.parent = parent
        self.templates = templates
        self.name = name
        self.entries = entries
        self.initialSizes = initialSizes
    }

    /// The document a VM's own file describes, for rewriting it (move, fix):
    /// its explicit values in alphabetical order.
    public init(rewriting file: VMSettingsFile, comment: String, name: String? = nil) {
        var entries = file.assignments.filter { $0.name != "vm_name" }.map { Entry($0.name, $0.value) }
        entries.sort { bytewiseLess($0.name, $1.name) }
        self.init(comment: comment, parent: file.parent, templates: file.templates,
                  name: name ?? file.value("vm_name") ?? "", entries: entries)
        ejectMedia = false
    }

    public enum Slot: Hashable, Comparable, Sendable {
        case hdd(Int), cdrom(Int)

        /// `vm_storage_hdd2_backend` → `.hdd(2)`.
        package init?(setting name: String) {
            for (prefix, make) in [("vm_storage_hdd", Slot.hdd), ("vm_storage_cdrom", Slot.cdrom)] as [(String, (Int) -> Slot)] {
                guard name.hasPrefix(prefix) else { continue }
                let rest = name.dropFirst(prefix.count)
                let digits = rest.prefix { $0.isASCII && $0.isNumber }
                guard let n = Int(digits), rest.dropFirst(digits.count).hasPrefix("_") else { return nil }
                self = make(n)
                return
            }
            return nil
        }

        package var title: String {
            switch self {
            case let .hdd(n): return "HDD \(n)"
            case let .cdrom(n): return "CD-ROM \(n)"
            }
        }
    }

    static func isCreateSize(_ name: String) -> Bool {
        name.hasPrefix("vm_storage_hdd") && name.hasSuffix("_createsize")
    }

    public func render(date: String = Self.currentDate(), user: String = Self.currentUser()) throws -> String {
        for e in entries {
            guard SettingName.isSetting(Substring(e.name)), e.name.hasPrefix("vm_") else {
                throw VMToolsError(.failure, e.name, "only vm_* settings can be stored in a VM's settings")
            }
        }
        for (what, v) in [("vm_name", name), ("parent", parent ?? "")] + entries.map({ ($0.name, $0.value) })
        where v.contains("\n") || v.contains("\0") {
            throw VMToolsError(.failure, what, "newline and NUL characters are not allowed in values")
        }
        for t in templates where !SettingName.isTemplateName(t) {
            throw VMToolsError(.failure, "template \(t)", "invalid template name (letters, digits and _ only)")
        }
        let enc = ExtendedString.encode
        let rule = String(repeating: "#", count: 60)
        var out: [String] = [rule, "# Virtual machine settings, written by vmtools \(Release.version).",
                             "# Generated on \(date) by \(user)."]
        for l in comment.split(separator: "\n", omittingEmptySubsequences: false) { out.append("# \(l)") }
        out += ["# Format: see vm.settings(5). This file is read as data, never run.", rule]
        out += ["", "### General ###", ""]
        if let parent { out.append("parent \(enc(parent))") }
        if !templates.isEmpty { out.append("template " + templates.map(enc).joined(separator: " ")) }
        out.append("vm_name=\(enc(name))")
        for general in ["vm_ram_size", "vm_cpu_count"] {
            if let e = entries.last(where: { $0.name == general }) { out.append("\(e.name)=\(enc(e.value))") }
        }
        out.append("")

        var bySlot: [Slot: [Entry]] = [:]
        for e in entries {
            guard let slot = Slot(setting: e.name), !Self.isCreateSize(e.name) else { continue }
            bySlot[slot, default: []].append(e)
        }
        if !bySlot.isEmpty {
            out.append("### Storage ###")
            for slot in bySlot.keys.sorted() {
                out.append("")
                if case let .hdd(n) = slot, let size = initialSizes[n], !size.isEmpty {
                    out.append("# \(slot.title) - initial size: \(enc(size))")
                } else {
                    out.append("# \(slot.title)")
                }
                // Last value per name, then bytewise order (`LC_ALL=C sort`).
                var last: [String: String] = [:]
                for e in bySlot[slot]! { last[e.name] = e.value }
                for name in last.keys.sorted(by: bytewiseLess) {
                    let line = "\(name)=\(enc(last[name]!))"
                    // An installation medium is not inserted again at the next start.
                    if ejectMedia, case .cdrom = slot, name.hasSuffix("_backend") { out.append("# " + line) } else { out.append(line) }
                }
            }
            out.append("")
        }

        out += ["### Misc settings ###", ""]
        var misc: [Entry] = []
        for e in entries where Self.isMisc(e.name) {
            misc.removeAll { $0.name == e.name }
            misc.append(e)
        }
        for e in misc { out.append("\(e.name)=\(enc(e.value))") }
        out.append("")
        return out.joined(separator: "\n") + "\n"
    }

    static func isMisc(_ name: String) -> Bool {
        !(name.hasPrefix("cfg_") || name == "vm_boot_order" || name == "vm_cpu_count" || name == "vm_name"
            || name == "vm_ram_size" || name == "vm_home" || Slot(setting: name) != nil)
    }

    /// Writes `home/vm.settings` atomically. Taking the lock is the caller's
    /// job; holding it is checked here.
    public func write(_ lock: HomeLock, global: GlobalConfig) throws {
        guard lock.isHeld else {
            throw VMToolsError(.failure, lock.directory, "internal error: settings written without holding the lock")
        }
        let path = lock.directory.appendingPathComponent(global.fileNames.settings)
        try FileSystem.writeAtomically(Array(render().utf8), to: path)
    }

    public static func currentDate() -> String {
        var t = time(nil)
        var tmv = tm()
        localtime_r(&t, &tmv)
        var buf = [CChar](repeating: 0, count: 64)
        let n = strftime(&buf, 64, "%a %b %e %H:%M:%S %Z %Y", &tmv)
        return n > 0 ? FileSystem.string(fromNulTerminated: buf) : "unknown date"
    }

    public static func currentUser() -> String {
        if let pw = getpwuid(geteuid()), let name = pw.pointee.pw_name { return String(cString: name) }
        return String(geteuid())
    }
}
