#if canImport(Glibc)
import Glibc
#endif

/// The ISO 9660 maker vmtools runs: genisoimage (or mkisofs) first, as
/// xorriso sleeps 100 ms on exit (libburn); xorriso through its mkisofs
/// emulation otherwise. Joliet and Rock Ridge always.
package enum ISOTool {
    /// Packs `dir` into `output` with extra mkisofs `options`; nil when no
    /// ISO maker is installed. The maker follows a link at its output, so
    /// it writes into `.NAME.tmp.XXXXXX` made here (O_EXCL, 0600), renamed
    /// over `output` only when it succeeds (the rename replaces a link
    /// rather than following it); `sync` flushes the file before that.
    package static func pack(_ dir: String, into output: String, options: [String] = [], sync: Bool = false,
                             environment: [String: String]) throws -> Subprocess.Result? {
        guard let tool = ["genisoimage", "mkisofs", "xorriso"].compactMap({ Subprocess.which($0, path: environment["PATH"]) }).first else {
            return nil
        }
        let tmp = try FileSystem.createExclusiveTemporary(beside: output, mode: 0o600)
        var renamed = false
        defer { if !renamed { unlink(tmp) } }
        let mkisofs = ["-J", "-R", "-quiet"] + options + ["-o", tmp]
        // xorriso takes `--` as the end of its mkisofs emulation; its paths
        // are absolute, so they cannot be mistaken for options anyway.
        let args = tool.hasSuffix("xorriso") ? ["-as", "mkisofs"] + mkisofs + [dir] : mkisofs + ["--", dir]
        let result = try Subprocess(tool, args).run()
        guard result.status == 0 else { return result }
        if sync { try FileSystem.syncFile(tmp) }
        try FileSystem.rename(tmp, output)
        renamed = true
        return result
    }
}
