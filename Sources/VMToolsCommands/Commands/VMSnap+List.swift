import VMToolsCore
import VMToolsLaunch

#if canImport(Glibc)
import Glibc
#endif

/// `vmsnap -l [-j]`: one value per VM (its snapshots, read from the qcow2
/// tables without qemu-img), rendered as a table or as JSON (vmsnap(1)).
/// Reads only, so it takes no lock: a VM being changed shows what its
/// images hold at that moment.
extension VMSnapCommand {
    static func list(_ options: Options, global: GlobalConfig, resolver: SettingsResolver, context: Context) -> ExitCode {
        var status = ExitCode.success
        var listed: [(home: String, snapshots: [Snapshot])] = []
        for operand in options.homes {
            do {
                let home = try VMHome.locate(operand, cwd: context.cwd, global: global)
                let vm = try resolver.loadVM(home: home, global: global)
                listed.append((home, try VMSnapshots(vm, environment: context.environment).list()))
            } catch let e as VMToolsError {
                status = .failure
                context.console.error(e)
            } catch {
                status = .failure
                context.console.error("\(operand): \(error)")
            }
        }
        let several = options.homes.count > 1
        if options.json {
            if several {
                context.console.printJSON(.object(listed.map { ($0.home, .array($0.snapshots.map(\.json))) }))
            } else if let only = listed.first {
                context.console.printJSON(.array(only.snapshots.map(\.json)))
            }
            return status
        }
        for (k, vm) in listed.enumerated() {
            if several {
                if k > 0 { context.console.print() }
                context.console.print("\(vm.home):")
            }
            for line in table(vm.snapshots) { context.console.print(line) }
        }
        return status
    }

    /// NAME, DATE (local), STATE, VMSTATE, IMAGES; nothing for no snapshots.
    static func table(_ snapshots: [Snapshot]) -> [String] {
        guard !snapshots.isEmpty else { return [] }
        let rows = snapshots.map { s in
            [s.name, localDate(s.date), !s.complete ? "incomplete" : s.live ? "live" : "stopped",
             s.live ? Formatting.bytes(s.vmStateSize) : "-", images(of: s).joined(separator: ",")]
        }
        return Formatting.table([["NAME", "DATE", "STATE", "VMSTATE", "IMAGES"]] + rows)
    }

    /// `2026-12-07 21:40:12` in the local time zone.
    static func localDate(_ seconds: Int64) -> String { format(seconds, "%Y-%m-%d %H:%M:%S", local: true) }

    /// `2026-12-07T21:40:12Z`.
    static func isoDate(_ seconds: Int64) -> String { format(seconds, "%Y-%m-%dT%H:%M:%SZ", local: false) }

    static func format(_ seconds: Int64, _ pattern: String, local: Bool) -> String {
        var t = time_t(seconds)
        var tmv = tm()
        guard (local ? localtime_r(&t, &tmv) : gmtime_r(&t, &tmv)) != nil else { return "?" }
        var buf = [CChar](repeating: 0, count: 64)
        let n = strftime(&buf, buf.count, pattern, &tmv)
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension Snapshot {
    /// The object `vmsnap -j` prints for a snapshot (vmsnap(1) JSON).
    package var json: JSON {
        .object([
            ("name", .string(name)),
            ("date", .string(VMSnapCommand.isoDate(date))),
            ("live", .bool(live)),
            ("vmstate_bytes", .number(Double(vmStateSize))),
            ("images", .array(disks.map { .string($0) })),
            ("tpm", .bool(tpm)),
            ("complete", .bool(complete)),
        ])
    }
}
