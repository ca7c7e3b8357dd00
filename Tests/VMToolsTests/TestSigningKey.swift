import Foundation
import Testing
@testable import VMToolsCore

/// A throw-away OpenPGP signing key for the image tests: made by
/// `gpg --batch` without a passphrase in a GNUPGHOME of its own, exported
/// as a keyring file `gpgv --keyring` reads (what a catalog entry's
/// image_keyring names). `stop` (or the value going away) kills the
/// gpg-agent gpg started, so nothing is left running.
final class TestSigningKey {
    let home: String
    /// The exported public key, binary, for `gpgv --keyring`.
    let keyring: String
    /// The same key ASCII-armored, as distribution-gpg-keys ships keys.
    let armoredKeyring: String
    private var stopped = false

    /// Makes the key in `directory` (made if missing; keep the path short:
    /// gpg-agent's socket lives there).
    init(directory: String, name: String = "vmtools test key") throws {
        home = directory + "/gnupg"
        keyring = directory + "/keyring.gpg"
        armoredKeyring = directory + "/keyring.asc"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try gpg(["--quick-generate-key", "\(name) <test@vmtools.invalid>", "ed25519", "sign", "never"])
        let r = try run(["--export"])
        guard !r.stdout.isEmpty else { throw VMToolsError(.failure, home, "gpg exported no key") }
        try Data(r.stdout).write(to: URL(fileURLWithPath: keyring))
        try gpg(["--armor", "--output", armoredKeyring, "--export"])
    }

    /// `file`'s detached signature at `signature` (binary, or ASCII-armored
    /// as Debian publishes SHA512SUMS.sign).
    func detachSign(_ file: String, to signature: String, armor: Bool = true) throws {
        try gpg((armor ? ["--armor"] : []) + ["--output", signature, "--detach-sign", file])
    }

    /// `file` clear-signed into `output` (Fedora's CHECKSUM).
    func clearSign(_ file: String, to output: String) throws {
        try gpg(["--output", output, "--clearsign", file])
    }

    /// Kills the agent gpg started for this home; idempotent.
    func stop() {
        guard !stopped, let gpgconf = Tools.path("gpgconf") else { return }
        stopped = true
        _ = try? Subprocess(gpgconf, ["--homedir", home, "--kill", "all"]).run()
    }

    deinit { stop() }

    private func run(_ args: [String]) throws -> Subprocess.Result {
        guard let gpg = Tools.path("gpg") else { throw VMToolsError(.failure, "gpg", "not installed (package gnupg)") }
        return try Subprocess(gpg, ["--homedir", home, "--batch", "--yes", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", ""] + args).run()
    }

    private func gpg(_ args: [String]) throws {
        let r = try run(args)
        guard r.status == 0 else { throw VMToolsError(.failure, home, "gpg \(args.joined(separator: " ")) failed: \(r.stderrText)") }
    }
}
