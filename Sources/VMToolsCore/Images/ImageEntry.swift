/// One catalog entry, `images/NAME.image` (vmimage(1), CATALOG): data in
/// the settings-file syntax, never shell.
public struct ImageEntry: Sendable, Equatable {
    public enum Kind: String, Sendable { case cloud, iso }

    /// What users type: the file name without `.image`.
    public var name: String
    /// The file it was read from (the winning layer's).
    public var file: String
    public var kind: Kind
    /// `image_url_ARCH`, by architecture (`x86_64`, `aarch64`).
    public var urls: [String: String] = [:]
    /// `image_digest_ARCH`: a pinned digest.
    public var digests: [String: ImageDigest] = [:]
    /// `image_checksums_ARCH`: the distribution's checksum file.
    public var checksums: [String: String] = [:]
    /// `image_signature_ARCH`: that file's detached OpenPGP signature; none
    /// with a keyring means the checksum file is clear-signed.
    public var signatures: [String: String] = [:]
    /// `image_keyring`: the OpenPGP keyring `gpgv` checks with.
    public var keyring: String?
    /// `image_user`: the default login user.
    public var user: String?
    /// `image_aliases`: other names for this entry (`debian`).
    public var aliases: [String] = []
    /// `vm_*` lines: settings a VM made from this entry gets, in file order.
    public var settings: [(name: String, value: String)] = []

    public init(name: String, file: String, kind: Kind) {
        self.name = name
        self.file = file
        self.kind = kind
    }

    public static func == (a: ImageEntry, b: ImageEntry) -> Bool {
        a.name == b.name && a.file == b.file && a.kind == b.kind && a.urls == b.urls && a.digests == b.digests
            && a.checksums == b.checksums && a.signatures == b.signatures && a.keyring == b.keyring && a.user == b.user
            && a.aliases == b.aliases && a.settings.map(\.name) == b.settings.map(\.name) && a.settings.map(\.value) == b.settings.map(\.value)
    }
}
