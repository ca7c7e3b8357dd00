/// Image formats as QEMU names them, from `ImageProbe`: what most callers
/// ask of a file.
public enum ImageFormat {
    /// The format of `path` (`qcow2`, `raw`, …); nil when it cannot be read.
    public static func detect(_ path: String) -> String? { ImageProbe(path)?.kind.format }
}

/// A file's kind in words, and whether it is an ISO, from `ImageProbe`.
public enum DiskImageKind {
    public static func describe(_ path: String) -> String { ImageProbe.describe(path) }

    /// An ISO 9660 image or a CD in a drive.
    public static func isISO(_ path: String) -> Bool { ImageProbe(path)?.kind == .iso }
}
