import VMToolsCore

/// A firmware image QEMU's firmware interop descriptors describe
/// (`docs/interop/firmware.json`; vm.settings(5), FIRMWARE): the read-only
/// CODE image, the template of its variable store, and its features.
/// Debian's `ovmf` ships them in /usr/share/qemu/firmware.
public struct FirmwareDescriptor: Equatable, Sendable {
    /// The descriptor file it was read from.
    public var file: String
    public var code: String
    public var codeFormat: String
    public var varsTemplate: String
    public var varsTemplateFormat: String
    public var features: Set<String>
    /// Machine type globs of the target architecture (`pc-q35-*`).
    public var machines: [String]

    public var requiresSMM: Bool { features.contains("requires-smm") }

    /// The directories searched, lowest priority first: a file in a later
    /// one replaces the file of the same name in an earlier one.
    /// `VMTOOLS_TEST_FIRMWARE_DIR` (tests; directories separated by `:`,
    /// lowest priority first) replaces them all.
    public static func directories(environment: [String: String]) -> [String] {
        if let d = environment["VMTOOLS_TEST_FIRMWARE_DIR"], !d.isEmpty { return d.split(separator: ":").map(String.init) }
        var dirs = ["/usr/share/qemu/firmware", "/etc/qemu/firmware"]
        if let x = environment["XDG_CONFIG_HOME"], x.hasPrefix("/") {
            dirs.append(x.appendingPathComponent("qemu/firmware"))
        } else if let h = environment["HOME"], h.hasPrefix("/") {
            dirs.append(h.appendingPathComponent(".config/qemu/firmware"))
        }
        return dirs
    }

    /// The descriptor files in the order QEMU's spec gives them priority:
    /// by file name, each name from the last directory that has it; an empty
    /// file masks the name.
    static func files(environment: [String: String]) -> [String] {
        var byName: [String: String] = [:]
        for dir in directories(environment: environment) {
            for name in (try? FileSystem.listDirectory(dir)) ?? [] where name.hasSuffix(".json") {
                byName[name] = dir.appendingPathComponent(name)
            }
        }
        return byName.keys.sorted().compactMap { name in
            let path = byName[name]!
            guard let text = try? FileSystem.readTextIfExists(path, limit: 1 << 20), !text.allSatisfy(\.isWhitespace) else { return nil }
            return path
        }
    }

    /// Reads one descriptor: a UEFI flash image in split mode (CODE and a
    /// variable template) for `architecture`, else nil. Files that are not
    /// such a descriptor, or whose images are missing, are passed over.
    static func read(_ path: String, architecture: String) -> FirmwareDescriptor? {
        guard let text = try? FileSystem.readTextIfExists(path, limit: 1 << 20), let json = try? JSON.parse(text),
              json["interface-types"]?.arrayValue?.contains(.string("uefi")) == true,
              let mapping = json["mapping"], mapping["device"]?.stringValue == "flash",
              (mapping["mode"]?.stringValue ?? "split") == "split",
              let code = mapping["executable"]?["filename"]?.stringValue,
              let vars = mapping["nvram-template"]?["filename"]?.stringValue,
              let target = json["targets"]?.arrayValue?.first(where: { $0["architecture"]?.stringValue == architecture })
        else { return nil }
        guard FileSystem.isRegularFile(code), FileSystem.isRegularFile(vars) else { return nil }
        return FirmwareDescriptor(
            file: path, code: code, codeFormat: mapping["executable"]?["format"]?.stringValue ?? "raw",
            varsTemplate: vars, varsTemplateFormat: mapping["nvram-template"]?["format"]?.stringValue ?? "raw",
            features: Set((json["features"]?.arrayValue ?? []).compactMap(\.stringValue)),
            machines: (target["machines"]?.arrayValue ?? []).compactMap(\.stringValue))
    }

    /// The firmware for `vm_firmware`: for `uefi` one without enrolled keys
    /// (Secure Boot not enforced), preferring one that needs no SMM; for
    /// `uefi-secure` one with Secure Boot, enrolled keys and SMM. Nil for
    /// `bios` or when none fits.
    public static func choose(_ firmware: VMSettings.Firmware, architecture: String, environment: [String: String]) -> FirmwareDescriptor? {
        let all = files(environment: environment).compactMap { read($0, architecture: architecture) }
        switch firmware {
        case .bios:
            return nil
        case .uefi:
            let open = all.filter { !$0.features.contains("enrolled-keys") }
            return open.first { !$0.requiresSMM && !$0.features.contains("secure-boot") } ?? open.first
        case .uefiSecure:
            return all.first { $0.features.isSuperset(of: ["secure-boot", "enrolled-keys", "requires-smm"]) }
        }
    }

    /// The error for a `vm_firmware` no descriptor fits.
    public static func noneFits(_ firmware: VMSettings.Firmware, settings: VMSettings, environment: [String: String]) -> VMToolsError {
        let what = firmware == .uefiSecure ? "UEFI firmware with Secure Boot, enrolled keys and SMM" : "UEFI firmware"
        return settings.invalid(SettingKey.firmware, "no firmware descriptor in \(directories(environment: environment).joined(separator: ", ")) describes \(what) (Debian: apt-get install ovmf)")
    }
}
