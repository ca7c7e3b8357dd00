import VMToolsCore

/// Late values by name (Docs/ARCHITECTURE.md, "The launch pipeline"): what
/// only the executor can know, a port it chooses, stands in the plan's text
/// as a named placeholder with the value `vmup -n` shows meanwhile. The
/// executor works the values out from the plan's typed choices and renders
/// the text with `filled(_:)`; no module runs then.
extension LaunchPlan {
    /// A port the executor chooses right before QEMU starts.
    public struct PortChoice: Equatable, Sendable {
        public enum Rule: Equatable, Sendable {
            /// The first port from `lowest` that binds on `iface` (SPICE has no `to=`).
            case firstFree(iface: String, lowest: Int)
            /// The port the kernel offers on the forward's IPv4 address (a
            /// forward of port 0 that a helper serves: passt cannot say which it took).
            case kernel(PortForward)
        }
        /// The placeholder's name.
        public var name: String
        public var rule: Rule
        /// The setting an error names.
        public var setting: String

        var dryRunLine: String? {
            switch rule {
            case .firstFree(let iface, let lowest): "would choose the first free SPICE port from \(lowest) on \(iface)"
            // Told with the forward it serves (Fact.forwards).
            case .kernel: nil
            }
        }
    }

    /// A question to the host a start depends on: `executable arguments`
    /// must print `expects`, or the start fails naming `setting` and `missing`.
    public struct Probe: Equatable, Sendable {
        public var executable: String
        public var arguments: [String]
        public var expects: String
        public var setting: String
        /// Why the start fails when the output lacks `expects`.
        public var missing: String

        var dryRunLine: String {
            "would ask \(([executable] + arguments).map(shellQuote).joined(separator: " ")) whether it has \(expects) (\(setting))"
        }
    }

    /// `qemu-img convert` of an imported image, or an appliance's disk, to
    /// qcow2 (vmcreate(1), Imported images): the first step of a start, so
    /// `vmup -n` only lists it. The settings already name `destination`.
    public struct Conversion: Equatable, Sendable {
        public var source: String
        /// The source's format, from `ImportedImage.check` when planned: a
        /// probe could take the file for another format that names host files.
        public var format: String
        /// The image or appliance given, which errors name.
        public var subject: String
        public var destination: String
        public var compress = false
        /// qemu-img's `preallocation` (compression wins).
        public var preallocation = "off"
        /// The private directory an `.ova` was unpacked into, removed once
        /// the conversions are done.
        public var unpacked: String?
        /// A thin qcow2 overlay on `source` instead of a copy (a VM made
        /// from a catalog entry, vmcreate(1)), of `size` when given.
        public var overlay = false
        public var size: String?

        var dryRunLine: String {
            if overlay { return "would make \(destination), a qcow2 overlay on \(source) (\(subject))" }
            return "would convert \(source)" + (source == subject ? "" : " (from \(subject))") + " into \(destination)"
        }
    }

    /// Where a late value stands in the plan's text: `vmup -n` shows
    /// `preview`, the executor the value it chose for `name`. The markers
    /// are control characters; only the names of the plan's `portChoices`
    /// are replaced, so a setting that held them stays as written.
    public static func placeholder(_ name: String, preview: String) -> String {
        "\u{1}" + name + "\u{2}" + preview + "\u{3}"
    }

    /// `text` with the placeholders of `names` replaced: by the value
    /// the name has there, or (nil) by its preview.
    static func render(_ text: String, _ names: [String: String?]) -> String {
        guard text.contains("\u{1}") else { return text }
        var out = ""
        var rest = Substring(text)
        while let start = rest.firstIndex(of: "\u{1}") {
            out += rest[..<start]
            let after = rest[rest.index(after: start)...]
            guard let mid = after.firstIndex(of: "\u{2}"), let end = after[mid...].firstIndex(of: "\u{3}") else {
                out += rest[start...]
                return out
            }
            let next = after.index(after: end)
            if let value = names[String(after[..<mid])] {
                out += value ?? String(after[after.index(after: mid)..<end])
            } else {
                out += rest[start..<next]
            }
            rest = after[next...]
        }
        return out + rest
    }

    /// The plan as `vmup -n` shows it: each placeholder as its preview.
    public var preview: LaunchPlan {
        portChoices.isEmpty ? self : rendering(Dictionary(portChoices.map { ($0.name, nil) }) { a, _ in a })
    }

    /// The plan with the executor's values in place of the placeholders,
    /// the forwards' chosen ports included: nothing left to choose.
    public func filled(_ values: [String: String]) -> LaunchPlan {
        var names = Dictionary(portChoices.map { ($0.name, String?.none) }) { a, _ in a }
        for (k, v) in values { names[k] = v }
        var p = rendering(names)
        p.portChoices.removeAll()
        for (i, f) in p.helperForwards.enumerated() {
            if let name = f.port, let port = values[name].flatMap({ Int($0) }) {
                p.helperForwards[i].forward.hostPort = port
                p.helperForwards[i].port = nil
            }
        }
        return p
    }

    private func rendering(_ values: [String: String?]) -> LaunchPlan {
        var p = self
        p.argv = argv.map { Self.render($0, values) }
        p.notices = notices.map { Self.render($0, values) }
        for i in p.helpers.indices { p.helpers[i].arguments = p.helpers[i].arguments.map { Self.render($0, values) } }
        return p
    }
}
