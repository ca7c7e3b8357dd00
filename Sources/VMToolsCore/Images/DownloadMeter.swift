import CSystem

#if canImport(Glibc)
import Glibc
#endif

/// The progress bar at a terminal: bytes, rate, time left; the total
/// comes from the headers curl dumps as they arrive.
final class DownloadMeter {
    let console: Console
    let name: String
    let headers: String
    let offset: UInt64
    let start = DownloadMeter.now()
    var last = 0.0
    var total: UInt64?
    var drawn = false

    init(console: Console, name: String, headers: String, offset: UInt64) {
        self.console = console
        self.name = name.escapingControlCharacters
        self.headers = headers
        self.offset = offset
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    func update(_ done: UInt64) {
        let t = Self.now()
        guard t - last >= 0.25 else { return }
        last = t
        if total == nil { total = Self.total(headers: headers, offset: offset) }
        let rate = Double(done - min(done, offset)) / max(t - start, 0.001)
        var line = "\r\u{1b}[K\(name)  \(Formatting.bytes(done))"
        if let total { line += " / \(Formatting.bytes(total))" }
        line += "  \(Formatting.bytes(UInt64(rate)))/s"
        if let total, rate > 0, total > done {
            let left = Int(Double(total - done) / rate)
            line += "  \(left / 60):\(left % 60 < 10 ? "0" : "")\(left % 60) left"
        }
        console.err.write(line)
        console.err.flush()
        drawn = true
    }

    func finish() {
        guard drawn else { return }
        drawn = false
        console.err.write("\r\u{1b}[K")
        console.err.flush()
    }

    /// The size of the whole file from the last response's headers:
    /// `Content-Range: bytes A-B/TOTAL`, else the offset plus `Content-Length`.
    static func total(headers: String, offset: UInt64) -> UInt64? {
        guard let bytes = try? FileSystem.readBytes(headers, limit: 1 << 16) else { return nil }
        var length: UInt64?, range: UInt64?
        for line in String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            if line.hasPrefix("HTTP/") { length = nil; range = nil }
            let lower = line.lowercased()
            if lower.hasPrefix("content-length:") { length = UInt64(lower.dropFirst(15).filter { $0 != " " }) }
            if lower.hasPrefix("content-range:"), let slash = lower.lastIndex(of: "/") { range = UInt64(lower[lower.index(after: slash)...].filter { $0 != " " }) }
        }
        return range ?? length.map { $0 + offset }
    }
}
