import VMToolsCore

/// The `<devices>` of a domain, from the machine's devices as QEMU attaches them.
extension LibvirtDomain {
    static func devices(_ b: inout Builder, _ m: Machine, tablet: Bool) throws {
        disks(&b, m)
        nics(&b, m)
        if let log = m.serial.log {
            b.open("serial", ["type": "file"])
            b.leaf("source", ["path": log])
            b.leaf("target", ["port": "0"])
            b.close()
        } else {
            b.open("serial", ["type": "pty"])
            b.leaf("target", ["port": "0"])
            b.close()
        }
        if tablet { b.leaf("input", ["type": "tablet", "bus": "usb"]) }
        try display(&b, m.display, keymap: m.keyboard)
        for share in m.shares {
            if share.transport == .virtiofs {
                b.note(SettingKey.share(share.id).transport, "virtiofs needs shared guest memory and libvirt's virtiofsd; exported as 9p")
            }
            b.open("filesystem", ["type": "mount", "accessmode": share.mode == .rw ? "mapped" : "squash"])
            b.leaf("source", ["dir": share.path])
            b.leaf("target", ["dir": share.tag])
            if share.mode == .ro { b.leaf("readonly") }
            b.close()
        }
        for usb in m.usbDevices {
            switch usb.device {
            case let .id(vendor, product):
                b.open("hostdev", ["mode": "subsystem", "type": "usb", "managed": "no"])
                b.open("source")
                b.leaf("vendor", ["id": "0x" + vendor])
                b.leaf("product", ["id": "0x" + product])
                b.close()
                b.close()
            case .port:
                b.note(usb.setting, "libvirt selects a host USB device by vendor:product or by bus and device number, not by port (\(usb.device.description))")
            }
        }
        // libvirt gives the channel a socket of its own (virsh domifaddr --source agent).
        if m.guestAgent != nil {
            b.open("channel", ["type": "unix"])
            b.leaf("target", ["type": "virtio", "name": "org.qemu.guest_agent.0"])
            b.close()
        }
        if let tpm = m.tpm {
            b.open("tpm", ["model": tpm.model])
            b.leaf("backend", ["type": "emulator", "version": tpm.version])
            b.close()
            if tpm.stateExists {
                b.note(SettingKey.tpm, "libvirt keeps its own TPM state; the state in \(VMFileNames.tpmDirectory)/ is not carried over")
            }
        }
    }

    /// The target name of a drive: IDE `hdX` and SATA `sdX` by index,
    /// virtio `vdX` by slot, SCSI `sdX` after SATA's six ports.
    static func target(_ bus: Machine.Bus, index: Int, sata: Bool) -> String {
        switch bus {
        case .ide: deviceName("hd", index)
        case .sata: deviceName("sd", index)
        case .virtio: deviceName("vd", index)
        case .scsi: deviceName("sd", index + (sata ? 6 : 0))
        }
    }

    static func disks(_ b: inout Builder, _ m: Machine) {
        let sata = m.disks.contains { $0.bus == .sata } || m.cdroms.contains { $0.bus == .sata }
        for disk in m.disks {
            switch disk.source {
            case .remote(let location):
                b.note(disk.setting, "a remote disk (\(location)); define it as a <disk type='network'> by hand")
                continue
            case .directory:
                b.note(disk.setting, "a directory served as a FAT disk (QEMU's vvfat)")
                continue
            case .file(let path):
                b.open("disk", ["type": "file", "device": "disk"])
                var driver = ["name": "qemu", "type": disk.format ?? "qcow2"]
                if disk.mode == .rw { driver["discard"] = "unmap"; driver["detect_zeroes"] = "unmap" }
                b.leaf("driver", driver)
                b.leaf("source", ["file": path])
            }
            b.leaf("target", ["dev": target(disk.bus, index: disk.bus == .virtio ? disk.slot - 1 : disk.index ?? disk.slot - 1, sata: sata),
                              "bus": disk.bus.rawValue])
            if disk.mode == .ro { b.leaf("readonly") }
            if disk.mode == .snap { b.leaf("transient") }
            b.close()
        }
        for cd in m.cdroms {
            b.open("disk", ["type": "file", "device": "cdrom"])
            b.leaf("driver", ["name": "qemu", "type": "raw"])
            switch cd.source {
            case .remote(let location)?: b.note(cd.setting, "a remote CD-ROM image (\(location))")
            case .packed?: b.note(cd.setting, "a directory vmup packs into an ISO at each start; pack it and name the ISO")
            case .file(let path)?: b.leaf("source", ["file": path])
            case nil: break
            }
            b.leaf("target", ["dev": target(cd.bus, index: cd.index, sata: sata), "bus": cd.bus.rawValue])
            b.leaf("readonly")
            b.close()
        }
        if m.cdroms.contains(where: { $0.bus == .scsi }) { b.leaf("controller", ["type": "scsi", "model": "virtio-scsi"]) }
    }

    static func nics(_ b: inout Builder, _ m: Machine) {
        for nic in m.nics {
            var attributes: [String: String] = [:]
            switch nic.mode {
            case .nat(let options):
                attributes["type"] = "user"
                if !options.isEmpty { b.note(nic.modeSetting, "user-mode options (\(options))") }
            case .passt:
                // The 9.0 schema lists it, but its parser refuses
                // <backend type='passt'/> (Docs/vminfo.1).
                attributes["type"] = "user"
                b.note(nic.modeSetting, "passt: libvirt 9.0 has no passt backend; exported as user-mode (slirp) networking")
            case .bridge: attributes["type"] = "bridge"
            case .tap: attributes["type"] = "ethernet"
            case .raw(let mode):
                b.note(nic.modeSetting, "a raw QEMU -netdev value (\(mode))")
                continue
            case .none: continue
            }
            b.open("interface", attributes)
            b.leaf("mac", ["address": nic.mac])
            switch nic.mode {
            case .bridge(let bridge): b.leaf("source", ["bridge": bridge])
            case .tap(let ifname): b.leaf("target", ["dev": ifname, "managed": "no"])
            default: break
            }
            b.leaf("model", ["type": nic.device == "virtio-net-pci" || nic.device == "virtio-net" ? "virtio" : nic.device])
            // libvirt forwards ports only with the passt backend, which 9.0
            // lacks; cloud-init's implicit SSH forward goes with its seed.
            for f in nic.forwards where f != .implicitSSH {
                b.note(SettingKey.nic(nic.id).forward, "\(f.description): libvirt 9.0 forwards no ports on a user-mode interface")
            }
            b.close()
        }
    }
}
