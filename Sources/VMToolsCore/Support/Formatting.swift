/// Text layout helpers shared by the report commands.
package enum Formatting {
    /// Rows aligned like `column -t`: columns padded to their widest cell and
    /// separated by two spaces; the last column is not padded. Cells are
    /// escaped before they are measured, so a control character in a name
    /// neither moves the cursor nor breaks the alignment.
    package static func table(_ cells: [[String]]) -> [String] {
        let rows = cells.map { $0.map(\.escapingControlCharacters) }
        let columns = rows.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: columns)
        for row in rows {
            for (k, cell) in row.enumerated() { widths[k] = max(widths[k], cell.displayWidth) }
        }
        return rows.map { row in
            row.enumerated().map { k, cell in
                k == row.count - 1 ? cell : cell.leftPadded(to: widths[k]) + "  "
            }.joined()
        }
    }

    /// `12.34` from a value, without Foundation's String(format:).
    package static func twoDecimals(_ v: Double) -> String {
        // Int(_:) traps on NaN and past Int.max; a rate may come from a peer's counters.
        guard let hundredths = Int(exactly: (v * 100).rounded()) else { return "?" }
        let frac = hundredths % 100
        return "\(hundredths / 100).\(frac < 10 ? "0" : "")\(frac)"
    }

    /// Sizes in the largest of KB, MB, GB, TB, from a count of KiB.
    package static func size(kilobytes: Int) -> String {
        var v = Double(kilobytes)
        for unit in ["KB", "MB", "GB"] {
            if v < 1024 { return "\(twoDecimals(v)) \(unit)" }
            v /= 1024
        }
        return "\(twoDecimals(v)) TB"
    }

    /// A byte count in B, KiB, MiB, GiB or TiB: what downloads and the
    /// image cache show (vmimage(1)).
    package static func bytes(_ n: UInt64) -> String {
        var v = Double(n)
        for unit in ["B", "KiB", "MiB", "GiB"] {
            if v < 1024 { return unit == "B" ? "\(n) B" : "\(twoDecimals(v)) \(unit)" }
            v /= 1024
        }
        return "\(twoDecimals(v)) TiB"
    }
}
