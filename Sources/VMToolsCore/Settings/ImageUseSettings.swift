/// What a VM made from a catalog entry records (vm.settings(5), IMAGES BY
/// NAME): the entry, the URL of its image and the image's digest.
public struct ImageOrigin: Sendable, Equatable {
    public var name: String
    public var url: String
    public var digest: String
}

extension VMSettings {
    /// `cfg_images_overlay` (vmtools.conf(5)): a thin overlay on the cached
    /// image (yes), or a full, independent copy (no).
    public func imagesOverlay() throws -> Bool {
        switch table.value(SettingKey.imagesOverlay) {
        case "yes", "": return true
        case "no": return false
        default: throw invalid(SettingKey.imagesOverlay, "expected yes or no")
        }
    }

    /// `vm_image_name`, `vm_image_url`, `vm_image_digest`; nil when the VM
    /// was not made from a catalog entry.
    public var imageOrigin: ImageOrigin? {
        let name = table.value(SettingKey.imageName)
        guard !name.isEmpty else { return nil }
        return ImageOrigin(name: name, url: table.value(SettingKey.imageURL), digest: table.value(SettingKey.imageDigest))
    }
}
