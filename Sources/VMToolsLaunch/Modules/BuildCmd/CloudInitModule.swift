import VMToolsCore

/// `cloudinit`: a cloud-init NoCloud seed, `cidata.iso` in the VM home
/// (vm.settings(5), CLOUD-INIT), attached read-only as a SCSI CD-ROM on a
/// controller of its own, so it takes none of the user's CD-ROM slots and
/// no `/dev/vdX` name. Runs after `networking`: the network-config matches
/// the MACs that module put on the command line.
public enum CloudInitModule: BuildCmdModule {
    public static let name = "cloudinit"
    static let drive = "vmtools-cidata"
    static let controller = "vmtools-seed-scsi"

    public static func build(_ c: inout QemuCommand) throws {
        guard try c.vm.cloudInitEnabled(), let dir = c.runDirectory ?? c.home else { return }
        let path = dir.appendingPathComponent(VMFileNames.cloudInitSeed)
        c.plan.machine.seeds.append(.init(setting: SettingKey.cloudInitEnable, path: path, label: "cidata"))
        // An export names the seed; its content is made by each start (the host's SSH keys).
        let seed = c.export ? SeedVolume(path: path, label: "cidata", files: []) : try seed(&c, path: path)
        if !c.export, !seed.isCurrent { c.plan.seedVolumes.append(seed) }
        c.append("-drive", "file=\(qemuEscape(seed.path)),format=raw,if=none,id=\(drive),readonly=on,media=cdrom",
                 "-device", "virtio-scsi-pci,id=\(controller)", "-device", "scsi-cd,drive=\(drive),bus=\(controller).0")
    }

    /// The seed's three files. A missing instance-id is made here and
    /// recorded by the start (a bare boot's is new each time).
    static func seed(_ c: inout QemuCommand, path: String) throws -> SeedVolume {
        var instanceID = c.vm.cloudInitInstanceID
        if instanceID.isEmpty {
            instanceID = try VMSettings.newInstanceID()
            if c.home != nil { c.plan.settingsToSave.append((SettingKey.cloudInitInstanceID, instanceID)) }
            // ssh.config records the instance its known_hosts belongs to.
            for (i, fact) in c.plan.readBack.enumerated() {
                if case .forwards(var ssh?) = fact {
                    ssh.instanceID = instanceID
                    c.plan.readBack[i] = .forwards(ssh: ssh)
                }
            }
        }
        let hostname = try c.vm.cloudInitHostname()
        let metaData = "instance-id: \(yamlQuote(instanceID))\nlocal-hostname: \(yamlQuote(hostname))\n"
        let user = try c.vm.cloudInitUser(hostUser: SettingsDocument.currentUser())
        let keys = try c.vm.cloudInitKeys(home: c.home, environment: c.environment)
        let userData = try c.vm.readableFile(SettingKey.cloudInitUserData, home: c.home, environment: c.environment)
        if let keys, keys.discovered, let file = keys.files.first {
            c.notices.append("cloud-init: the SSH key \(file) (\(SettingKey.cloudInitSSHKey) is empty)")
        } else if keys == nil, userData == nil {
            throw c.invalid(SettingKey.cloudInitSSHKey, "no SSH key for the cloud-init user \(user): none of ~/.ssh/id_ed25519.pub, id_ecdsa.pub, id_rsa.pub exists; set \(SettingKey.cloudInitSSHKey) to a key or a .pub file (or give \(SettingKey.cloudInitUserData), or \(SettingKey.cloudInitEnable)=no)")
        }
        let config = cloudConfig(user: user, keys: keys?.keys ?? []) + mounts(try c.vm.shares(home: c.home, environment: c.environment))
        let userDataText = try userData.map { try merged(config, userFile: $0, setting: SettingKey.cloudInitUserData, c) } ?? config
        let network: String
        if let file = try c.vm.readableFile(SettingKey.cloudInitNetworkConfig, home: c.home, environment: c.environment) {
            network = try FileSystem.readTextIfExists(file, limit: 1 << 20) ?? ""
        } else {
            network = networkConfig(macs: macs(c.argv))
        }
        return SeedVolume(path: path, label: "cidata", files: [.init("meta-data", metaData), .init("user-data", userDataText),
                                                               .init("network-config", network)])
    }

    /// The default user: the keys, passwordless sudo, no password at all.
    static func cloudConfig(user: String, keys: [String]) -> String {
        var s = "#cloud-config\n"
        s += "users:\n  - name: \(yamlQuote(user))\n    shell: /bin/bash\n    sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n    lock_passwd: true\n"
        if !keys.isEmpty { s += "    ssh_authorized_keys:\n" + keys.map { "      - \(yamlQuote($0))\n" }.joined() }
        s += "ssh_pwauth: false\ndisable_root: true\n"
        return s
    }

    /// One fstab line per share, added and mounted by `bootcmd`
    /// (vm.settings(5), SHARED FOLDERS): cloud-init's own `mounts:` drops
    /// any device that is not a block device or `host:/path`, which a 9p
    /// tag is not. `nofail` and `|| true`: a guest without 9p still boots.
    /// Tags are letters, digits, `_`, `-`, `.` (`Share.isTag`): safe in sh.
    static func mounts(_ shares: [Share]) -> String {
        guard !shares.isEmpty else { return "" }
        return "bootcmd:\n" + shares.map {
            let line = "\($0.tag) \($0.guestPath) 9p \($0.mountOptions),nofail 0 0"
            let sh = "grep -q '^\($0.tag) ' /etc/fstab || echo '\(line)' >> /etc/fstab; mkdir -p \($0.guestPath); mount \($0.guestPath) || true"
            return "  - [\"sh\", \"-c\", \(yamlQuote(sh))]\n"
        }.joined()
    }

    /// The user's user-data after ours, in a MIME multipart cloud-init
    /// reads in order: a cloud-config is merged into ours (lists appended,
    /// its keys winning), a script runs, a multipart is walked.
    static func merged(_ config: String, userFile: String, setting: String, _ c: QemuCommand) throws -> String {
        let text = try FileSystem.readTextIfExists(userFile, limit: 16 << 20) ?? ""
        let part: String
        if text.hasPrefix("#cloud-config") {
            part = "Content-Type: text/cloud-config; charset=\"utf-8\"\nMerge-Type: list(append)+dict(recurse_array,recurse_list)+str()\n\n" + text
        } else if text.hasPrefix("#!") {
            part = "Content-Type: text/x-shellscript; charset=\"utf-8\"\n\n" + text
        } else if text.lowercased().hasPrefix("content-type: multipart/") {
            part = text
        } else {
            throw VMToolsError(.failure, userFile, "not cloud-init user-data (\(setting)): the first line must be #cloud-config or a #! script, or the file a MIME multipart")
        }
        let boundary = "==vmtools-" + SeedVolume(path: "", label: "", files: [.init("", text)]).digest + "=="
        return "Content-Type: multipart/mixed; boundary=\"\(boundary)\"\nMIME-Version: 1.0\n\n"
            + "--\(boundary)\nContent-Type: text/cloud-config; charset=\"utf-8\"\n\n\(config)\n"
            + "--\(boundary)\n\(part)\(part.hasSuffix("\n") ? "" : "\n")--\(boundary)--\n"
    }

    /// netplan v2: DHCP on every NIC, matched by MAC and named eth0, eth1, …
    /// (`match` without `set-name` leaves Debian's ifupdown renderer without
    /// a working interface).
    static func networkConfig(macs: [String]) -> String {
        var s = "version: 2\nethernets:\n"
        for (i, mac) in macs.enumerated() {
            s += "  eth\(i):\n    match:\n      macaddress: \"\(mac.lowercased())\"\n    set-name: eth\(i)\n    dhcp4: true\n"
        }
        return macs.isEmpty ? "version: 2\n" : s
    }

    /// The MACs of the NICs on the command line, in order (a prefix-only
    /// MAC is random per start, so it is read from what `networking` chose).
    static func macs(_ argv: [String]) -> [String] {
        zip(argv, argv.dropFirst()).compactMap { flag, value in
            guard flag == "-device", value.contains(",netdev=") else { return nil }
            return value.split(separator: ",").first { $0.hasPrefix("mac=") }.map { String($0.dropFirst(4)) }
        }
    }

    /// A YAML double-quoted scalar cloud-init's YAML 1.1 reader takes back
    /// exactly: `"` and `\\` escaped, and every character outside YAML's
    /// printable set, or one it reads as a line break (C0 and C1 controls,
    /// DEL, U+2028, U+2029, U+FEFF, U+FFFE, U+FFFF), as `\\xNN` or `\\uNNNN`.
    static func yamlQuote(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            let v = c.value
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if v < 0x20 || (0x7F...0x9F).contains(v) {
                    out += "\\x" + String(repeating: "0", count: v < 0x10 ? 1 : 0) + String(v, radix: 16)
                } else if v == 0x2028 || v == 0x2029 || v == 0xFEFF || v == 0xFFFE || v == 0xFFFF {
                    out += "\\u" + String(v, radix: 16)
                } else {
                    out.unicodeScalars.append(c)
                }
            }
        }
        return out + "\""
    }
}
