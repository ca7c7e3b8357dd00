/// The ISO 9660 maker vmtools runs: genisoimage (or mkisofs) first, as
/// xorriso sleeps 100 ms on exit (libburn); xorriso through its mkisofs
/// emulation otherwise. Joliet and Rock Ridge always.
package enum ISOTool {
    /// Packs `dir` into `output` with extra mkisofs `options`; nil when no
    /// ISO maker is installed.
    package static func pack(_ dir: String, into output: String, options: [String] = [],
                             environment: [String: String]) throws -> Subprocess.Result? {
        guard let tool = ["genisoimage", "mkisofs", "xorriso"].compactMap({ Subprocess.which($0, path: environment["PATH"]) }).first else {
            return nil
        }
        let mkisofs = ["-J", "-R", "-quiet"] + options + ["-o", output]
        // xorriso takes `--` as the end of its mkisofs emulation; its paths
        // are absolute, so they cannot be mistaken for options anyway.
        let args = tool.hasSuffix("xorriso") ? ["-as", "mkisofs"] + mkisofs + [dir] : mkisofs + ["--", dir]
        return try Subprocess(tool, args).run()
    }
}
