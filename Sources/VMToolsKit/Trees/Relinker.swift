/// Rewrites the links of VMs whose tree moves (commands.md §8 "Effects"):
/// the `parent` line, storage paths, `childs.lst` entries and the backing
/// paths recorded inside qcow2 images. Every change goes through the
/// transaction, so it is undone if the operation fails.
struct Relinker {
    let global: GlobalConfig
    let tx: Transaction
    let environment: [String: String]

    func settingsPath(_ home: String) -> String { home.appendingPathComponent(global.file("cfg_file_vmsettings")) }

    /// The VM now at `home` gets its parent and storage paths translated,
    /// and each of its images whose backing file moves is rebased.
    /// `rename` changes `vm_name` when it still was the old directory name.
    func translateVM(at home: String, _ t: PathTranslation, comment: String, rename: (old: String, new: String)? = nil) throws {
        let file = try VMSettingsFile.read(settingsPath(home))
        var doc = SettingsDocument(rewriting: file, comment: comment, name: file.value("vm_name") ?? home.lastPathComponent)
        var changed = false
        if let p = file.parent, t.applies(to: p) {
            doc.parent = t(p)
            changed = true
        }
        if let rename, doc.name == rename.old, rename.old != rename.new {
            doc.name = rename.new
            changed = true
        }
        for i in doc.entries.indices where isBackend(doc.entries[i].name) {
            let b = StorageBackend(doc.entries[i].value)
            guard !b.isRemote, !b.location.isEmpty else { continue }
            let image = b.path(home: home, environment: environment)
            if let backing = try? QemuImg.backing(of: image, environment: environment), t.applies(to: backing.path) {
                try tx.rebase(image, onto: t(backing.path))
            }
            if b.location.hasPrefix("/"), t.applies(to: b.location) {
                doc.entries[i].value = (b.prefix.map { $0 + ":" } ?? "") + t(b.location)
                changed = true
            }
        }
        if changed { try tx.writeFile(Array(try doc.render().utf8), to: settingsPath(home)) }
    }

    /// Translates the entries of the `childs.lst` in `home`.
    func translateChildList(in home: String, _ t: PathTranslation) throws {
        let list = try ChildList.read(home: home, global: global)
        let translated = ChildList(list.children.map { t($0) })
        if translated != list { try tx.writeFile(Array(translated.text.utf8), to: ChildList.path(in: home, global: global)) }
    }

    /// Adds or removes one entry of the list in `home` (nil removes only).
    func updateChildList(in home: String, remove old: String?, add new: String?) throws {
        var list = try ChildList.read(home: home, global: global)
        let before = list
        if let old { list.remove(old) }
        if let new { try list.add(new) }
        guard list != before else { return }
        try tx.writeFile(list.children.isEmpty ? nil : Array(list.text.utf8), to: ChildList.path(in: home, global: global))
    }

    func isBackend(_ name: String) -> Bool { name.hasPrefix("vm_storage_") && name.hasSuffix("_backend") }
}
