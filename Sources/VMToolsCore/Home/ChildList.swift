/// `childs.lst` in a parent's home (vm.settings(5) CHILDS.LST): canonical absolute
/// child homes, one per line, sorted bytewise, no duplicates. An empty list
/// is no file at all.
public struct ChildList: Equatable, Sendable {
    public private(set) var children: [String]

    public init(_ children: [String] = []) {
        self.children = Self.normalize(children)
    }

    static func normalize(_ list: [String]) -> [String] {
        Array(Set(list.filter { !$0.isEmpty })).sorted(by: bytewiseLess)
    }

    public static func path(in home: String, global: GlobalConfig) -> String {
        home.appendingPathComponent(global.fileNames.childs)
    }

    public static func read(home: String, global: GlobalConfig) throws -> ChildList {
        let p = path(in: home, global: global)
        // Its lines are shown as children's paths: a link would show another file's (vmtools(7), SECURITY).
        try FileSystem.refuseLink(p)
        guard let text = try FileSystem.readTextIfExists(p, limit: SettingsText.maximumSize) else { return ChildList() }
        let lines = text.unicodeScalars.split(separator: "\n").map { String($0) }
        return ChildList(lines)
    }

    /// Every VM below `roots` through the child lists, level by level, each
    /// once (those in `known` are not listed). Deeper than
    /// `cfg_limit_nesting` levels is an error about `subject`.
    public static func descendants(of roots: [String], known: Set<String> = [], global: GlobalConfig,
                                   subject: String? = nil) throws -> [String] {
        let limit = global.typed.nestingLimit
        var seen = known.union(roots)
        var found: [String] = []
        var level = roots
        var depth = 0
        while !level.isEmpty {
            depth += 1
            guard depth <= limit else {
                throw VMToolsError(.failure, subject ?? roots.first, "children nested deeper than cfg_limit_nesting (\(limit)); is there a loop?")
            }
            var next: [String] = []
            for vm in level {
                for child in try read(home: vm, global: global).children where VMHome.isHome(child, global: global) && !seen.contains(child) {
                    seen.insert(child)
                    found.append(child)
                    next.append(child)
                }
            }
            level = next
        }
        return found
    }

    /// Children whose home no longer holds a VM: `vmfix -p` repairs these.
    public func missing(global: GlobalConfig) -> [String] {
        children.filter { !VMHome.isHome($0, global: global) }
    }

    public mutating func add(_ home: String) throws {
        guard home.hasPrefix("/"), !home.contains("\n") else {
            throw VMToolsError(.failure, home, "a child list entry must be an absolute path without newlines")
        }
        children = Self.normalize(children + [home])
    }

    public mutating func remove(_ home: String) {
        children.removeAll { $0 == home }
    }

    public var text: String { children.map { $0 + "\n" }.joined() }

    /// Saves the list atomically under the lock of its home; an empty list
    /// removes the file.
    public func write(_ lock: HomeLock, global: GlobalConfig) throws {
        let p = Self.path(in: lock.directory, global: global)
        if children.isEmpty {
            try FileSystem.removeFile(p)
        } else {
            try FileSystem.writeAtomically(Array(text.utf8), to: p)
        }
    }
}
