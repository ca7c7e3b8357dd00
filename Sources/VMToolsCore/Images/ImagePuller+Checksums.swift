import CSystem

#if canImport(Glibc)
import Glibc
#endif

/// The verifying side of a pull (vmimage(1), DOWNLOADS): the entry's
/// checksum file and its OpenPGP signature, checked with `gpgv`.
extension ImagePuller {
    /// A checksum file's signature: bounded like any small download.
    static let signatureLimit = 64 << 10

    /// The entry's checksum file, fetched and, with a keyring, checked with
    /// `gpgv`: a detached signature, or the file clear-signed, in which case
    /// only its signed part is read.
    func checksumList(_ entry: ImageEntry, url: String, signature: String?) throws -> ChecksumList {
        guard Self.isWebURL(url) else {
            throw VMToolsError(.failure, entry.name, "\(url): only https:// and http:// checksum files are downloaded")
        }
        let bytes = try fetchSmall(entry, url, limit: ChecksumList.maxSize)
        guard let keyring = entry.keyring else {
            if signature != nil {
                throw VMToolsError(.failure, entry.name, "\(entry.file): image_signature_\(architecture) needs image_keyring to check it with")
            }
            return try ChecksumList(bytes: bytes, source: url)
        }
        guard FileSystem.isRegularFile(keyring) else {
            throw VMToolsError(.failure, entry.name, "\(keyring): the keyring to check \(url) with is missing (install the package that ships it)")
        }
        let gpgv = try tool("gpgv", package: "gpgv")
        try cache.prepare()
        var temporaries: [String] = []
        defer { temporaries.forEach { unlink($0) } }
        func temporary(_ data: [UInt8], _ name: String) throws -> String {
            let (fd, path) = try FileSystem.openTemporary(beside: cache.partialDirectory.appendingPathComponent(name))
            temporaries.append(path)
            defer { close(fd) }
            try FileSystem.writeAll(fd, data, path: path)
            return path
        }
        let sums = try temporary(bytes, "checksums")
        // gpgv reads binary keyrings only; an armored one (distribution-gpg-keys)
        // is handed over decoded (OpenPGPArmor).
        var keyringFile = keyring
        let head = try FileSystem.openForReading(keyring).closingAfter { FileSystem.readBytes($0, at: 0, count: 256) ?? [] }
        if OpenPGPArmor.isArmored(head) {
            guard let packets = OpenPGPArmor.dearmor(try FileSystem.readBytes(keyring, limit: 16 << 20)) else {
                throw VMToolsError(.failure, entry.name, "\(keyring): a broken ASCII-armored keyring")
            }
            keyringFile = try temporary(packets, "keyring")
        }
        // An empty GNUPGHOME: gpgv reads nothing of the user's own keys.
        let home = try Self.temporaryDirectory(in: cache.partialDirectory)
        defer { FileSystem.removeTree(home) }
        var env = environment
        env["GNUPGHOME"] = home
        let arguments: [String]
        if let signature {
            guard Self.isWebURL(signature) else {
                throw VMToolsError(.failure, entry.name, "\(signature): only https:// and http:// signatures are downloaded")
            }
            let sig = try temporary(try fetchSmall(entry, signature, limit: Self.signatureLimit), "signature")
            arguments = ["--keyring", keyringFile, sig, sums]
        } else {
            arguments = ["--keyring", keyringFile, "--output", "-", sums]
        }
        let r = try Subprocess(gpgv, arguments, environment: env).run()
        guard r.status == 0 else {
            let why = r.stderrText.split(separator: "\n").last(where: { $0.hasPrefix("gpgv:") }).map { ": " + $0 } ?? ""
            throw VMToolsError(.failure, entry.name, "\(signature ?? url): bad signature of \(url) for the keyring \(keyring)\(why)")
        }
        return signature == nil ? try ChecksumList(bytes: r.stdout, source: url) : try ChecksumList(bytes: bytes, source: url)
    }

    /// A small file (checksums, signature) into memory.
    func fetchSmall(_ entry: ImageEntry, _ url: String, limit: Int) throws -> [UInt8] {
        let curl = try tool("curl", package: "curl")
        let r = try Subprocess(curl, curlArguments(url) + ["--max-filesize", String(limit), "--", url], environment: environment).run()
        guard r.status == 0 else { throw downloadError(entry, url, status: r.status, stderr: r.stderrText) }
        guard r.stdout.count <= limit else {
            throw VMToolsError(.failure, entry.name, "\(url): larger than \(limit >> 10) KiB, not a checksum file or signature")
        }
        return r.stdout
    }
}
