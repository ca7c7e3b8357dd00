import VMToolsCore

/// Rewrites the links of VMs whose tree moves (vmmv(1) "Effects"):
/// the `parent` line, storage paths, `childs.lst` entries and the backing
/// paths recorded inside qcow2 images. Every change goes through the
/// transaction, so it is undone if the operation fails.
package struct Relinker {
    let global: GlobalConfig
    let tx: Transaction
    let environment: [String: String]

    package init(global: GlobalConfig, tx: Transaction, environment: [String: String]) {
        self.global = global
        self.tx = tx
        self.environment = environment
    }

    /// The VM now at `home` gets its parent and storage paths translated
    /// (in place: its other lines are kept), and each of its images whose
    /// backing file moves is rebased. `rename` changes `vm_name` when it
    /// still was the old directory name.
    func translateVM(at home: String, _ t: PathTranslation, rename: (old: String, new: String)? = nil) throws {
        let file = try VMSettingsFile.read(global.settingsPath(in: home))
        var patch = SettingsPatch()
        if let p = file.parent, t.applies(to: p) { patch.parent = .some(t(p)) }
        if let rename, rename.old != rename.new, file.value(SettingKey.name) == rename.old { patch.values[SettingKey.name] = rename.new }
        for (name, value) in file.assignments where SettingName.isStorageBackend(name) {
            let b = StorageBackend(value)
            guard !b.isRemote, !b.location.isEmpty else { continue }
            let image = b.path(home: home, environment: environment)
            if let backing = try? QemuImg.backing(of: image, environment: environment), t.applies(to: backing.path) {
                try tx.rebase(image, onto: t(backing.path), current: backing)
            }
            if b.location.hasPrefix("/"), t.applies(to: b.location) {
                patch.values[name] = (b.prefix.map { $0 + ":" } ?? "") + t(b.location)
            }
        }
        try patch.write(to: home, global: global, tx)
    }

    /// Translates the entries of the `childs.lst` in `home`.
    func translateChildList(in home: String, _ t: PathTranslation) throws {
        let list = try ChildList.read(home: home, global: global)
        let translated = ChildList(list.children.map { t($0) })
        if translated != list { try tx.writeFile(Array(translated.text.utf8), to: ChildList.path(in: home, global: global)) }
    }

    /// Adds or removes one entry of the list in `home` (nil removes only).
    package func updateChildList(in home: String, remove old: String?, add new: String?) throws {
        var list = try ChildList.read(home: home, global: global)
        let before = list
        if let old { list.remove(old) }
        if let new { try list.add(new) }
        guard list != before else { return }
        try tx.writeFile(list.children.isEmpty ? nil : Array(list.text.utf8), to: ChildList.path(in: home, global: global))
    }
}
