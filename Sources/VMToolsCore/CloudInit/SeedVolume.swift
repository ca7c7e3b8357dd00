#if canImport(Glibc)
import Glibc
#endif

/// A small ISO 9660 volume of generated text files kept in the VM home: the
/// cloud-init seed (`cidata`), a Kickstart volume (`OEMDRV`); or, with
/// `isDirectory`, a directory of them (the preseed file QEMU's TFTP serves).
/// Its inputs' digest is its application id, so an unchanged seed is
/// recognised by reading one sector and is never rebuilt (vm.settings(5),
/// CLOUD-INIT).
package struct SeedVolume: Equatable, Sendable {
    package struct File: Equatable, Sendable {
        package var name: String
        package var content: String
        package init(_ name: String, _ content: String) {
            self.name = name
            self.content = content
        }
    }

    package var path: String
    package var label: String
    package var files: [File]
    package var isDirectory = false

    package init(path: String, label: String, files: [File], isDirectory: Bool = false) {
        self.path = path
        self.label = label
        self.files = files
        self.isDirectory = isDirectory
    }

    /// `VMTOOLS_SEED_` and the FNV-1a 64 hash of label, names and contents
    /// (change detection, not security: the files are the user's own).
    package var digest: String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func add(_ s: String) {
            for b in s.utf8 + [0] {
                h ^= UInt64(b)
                h = h &* 0x100_0000_01b3
            }
        }
        add(label)
        for f in files { add(f.name); add(f.content) }
        let hex = String(h, radix: 16, uppercase: true)
        return "VMTOOLS_SEED_" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// The application id recorded in an existing volume (the primary
    /// volume descriptor at sector 16, bytes 574–701); nil if none.
    package static func recordedDigest(_ path: String) -> String? {
        // Not through a link (the start then refuses it), nor waiting on a FIFO.
        guard let fd = try? FileSystem.openForReading(path, noFollow: true) else { return nil }
        defer { close(fd) }
        guard let buf = FileSystem.readBytes(fd, at: 16 * 2048 + 574, count: 128), buf.count == 128 else { return nil }
        let text = String(decoding: buf, as: UTF8.self).trimmingTrailingWhitespace()
        return text.isEmpty ? nil : text
    }

    /// Up to date: the file exists and records this digest.
    package var isCurrent: Bool {
        guard isDirectory else { return Self.recordedDigest(path) == digest }
        return files.allSatisfy { f in (try? FileSystem.readTextIfExists(path.appendingPathComponent(f.name))) == f.content }
    }

    /// Writes the files into a private directory beside the volume, packs
    /// them (Joliet + Rock Ridge), syncs and renames over the old volume.
    package func build(environment: [String: String]) throws {
        if isDirectory {
            // Written into: a real directory of ours, never one a link names.
            try FileSystem.checkOwnDirectory(path)
            guard FileSystem.lexists(path) || mkdir(path, 0o700) == 0 else {
                throw VMToolsError(.failure, path, "cannot create the directory: \(FileSystem.errnoMessage())")
            }
            for f in files { try FileSystem.writeAtomically(Array(f.content.utf8), to: path.appendingPathComponent(f.name), mode: 0o600) }
            return
        }
        let dir = path.deletingLastPathComponent
        let stage = dir.appendingPathComponent(".\(path.lastPathComponent).d")
        FileSystem.removeTree(stage)
        defer { FileSystem.removeTree(stage) }
        guard mkdir(stage, 0o700) == 0 else {
            throw VMToolsError(.failure, stage, "cannot create the directory: \(FileSystem.errnoMessage())")
        }
        for f in files {
            try FileSystem.writeAtomically(Array(f.content.utf8), to: stage.appendingPathComponent(f.name), mode: 0o600, syncDirectory: false)
        }
        // It holds SSH keys and user-data: the user's alone (the ISO maker's
        // output is 0600, renamed over the old volume: ISOTool.pack).
        guard let r = try ISOTool.pack(stage, into: path, options: ["-V", label, "-A", digest], sync: true, environment: environment) else {
            throw VMToolsError(.failure, path, "building the \(label) volume needs xorriso or genisoimage (Debian: apt-get install xorriso)")
        }
        guard r.status == 0 else {
            throw VMToolsError(.failure, path, "cannot build the \(label) volume: \(r.stderrText.trimmingTrailingWhitespace())")
        }
    }
}
