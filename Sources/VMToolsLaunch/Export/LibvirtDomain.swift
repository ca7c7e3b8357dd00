import VMToolsCore
import VMToolsQEMU

/// A libvirt domain definition of a resolved VM (vminfo(1), `-L`), for
/// libvirt 9.0 (Debian 12) and later. Every setting libvirt cannot express
/// becomes a note (`SETTING: not expressible in libvirt: why`), written as a
/// comment into the XML and printed by vminfo on stderr: never dropped
/// silently. Pure: it reads image headers, never changes anything.
public struct LibvirtDomain: Sendable {
    public private(set) var xml = ""
    public private(set) var notes: [String] = []

    /// `accelerator` decides the domain type (`kvm` or `qemu`, i.e. TCG);
    /// `serialFile` is the name of the serial log in the home (`cfg_file_serial`).
    public init(_ vm: ResolvedVM, accelerator: Accelerator.Kind, serialFile: String, environment: [String: String]) throws {
        var b = Builder()
        let s = VMSettings(vm.settings)
        let home = vm.home
        let kvm = accelerator == .kvm
        let arch = try s.qemuArch()


        b.open("domain", ["type": kvm ? "kvm" : "qemu"])
        let name = Self.domainName(vm.name)
        b.leaf("name", text: name)
        if name != vm.name { b.note(SettingKey.name, "a libvirt name is not empty and holds no '/' or line break; exported as '\(name)'") }
        if let uuid = try s.uuid() { b.leaf("uuid", text: uuid) }
        if let ram = try s.ramSize(), let mib = ram.mebibytes {
            b.leaf("memory", ["unit": "MiB"], text: String(mib))
        } else {
            // QEMU's default, which libvirt does not have.
            b.leaf("memory", ["unit": "MiB"], text: "128")
        }
        b.leaf("vcpu", text: String(try s.cpuCount() ?? 1))

        // `host` is KVM's passthrough; under TCG vmup gives QEMU `max`, which
        // libvirt calls `maximum` (Docs/vminfo.1).
        let cpu = try s.cpuType().split(separator: ",", maxSplits: 1).map(String.init)
        if cpu.count > 1 { b.note(SettingKey.cpuType, "CPU features (\(cpu[1]))") }
        switch cpu.first ?? "" {
        case "": break
        case "host": b.leaf("cpu", ["mode": kvm ? "host-passthrough" : "maximum"])
        case "max": b.leaf("cpu", ["mode": "maximum"])
        case let model:
            b.open("cpu", ["mode": "custom", "match": "exact"])
            b.leaf("model", ["fallback": "allow"], text: model)
            b.close()
        }

        // OS: machine, firmware, boot.
        var params = try s.qemuParams()
        let firmware = try s.firmware()
        var machine = firmware == .uefiSecure ? "q35" : "pc"
        if let k = params.firstIndex(where: { $0 == "-machine" || $0 == "-M" }), k + 1 < params.count {
            let options = params[k + 1].split(separator: ",").map(String.init)
            if let type = options.first(where: { !$0.contains("=") }) ?? options.first(where: { $0.hasPrefix("type=") }).map({ String($0.dropFirst(5)) }) {
                machine = type
            }
            if options.count > 1 { b.note(SettingKey.qemuParams, "-machine options other than the type (\(params[k + 1]))") }
            params.removeSubrange(k...k + 1)
        }
        // The shipped default (vmtools.conf(5)): a USB tablet, which libvirt has.
        var tablet = false
        if let k = params.indices.first(where: { params[$0] == "-usbdevice" && $0 + 1 < params.count && params[$0 + 1] == "tablet" }) {
            tablet = true
            params.removeSubrange(k...k + 1)
        }
        b.open("os", firmware == .bios ? [:] : ["firmware": "efi"])
        b.leaf("type", ["arch": arch, "machine": machine], text: "hvm")
        if firmware != .bios {
            let secure = firmware == .uefiSecure ? "yes" : "no"
            b.open("firmware")
            b.leaf("feature", ["enabled": secure, "name": "enrolled-keys"])
            b.leaf("feature", ["enabled": secure, "name": "secure-boot"])
            b.close()
            if FileSystem.exists(home.appendingPathComponent(VMFileNames.firmwareVars)) {
                // libvirt 9.0 has no <nvram format='qcow2'> (9.2 adds it).
                b.note(SettingKey.firmware, "the UEFI variables in \(VMFileNames.firmwareVars) are qcow2, which libvirt 9.0 cannot use as NVRAM; libvirt starts from a fresh store")
            }
        }
        if let direct = try s.directBoot(home: home, environment: environment) {
            b.leaf("kernel", text: direct.kernel)
            if let initrd = direct.initrd { b.leaf("initrd", text: initrd) }
            if let append = direct.append { b.leaf("cmdline", text: append) }
        }
        var devs: [String] = []
        for letter in try s.bootOrder() {
            let dev = switch letter { case "a", "b": "fd"; case "c": "hd"; case "d": "cdrom"; default: "network" }
            if !devs.contains(dev) { devs.append(dev) }
        }
        for dev in devs { b.leaf("boot", ["dev": dev]) }
        if s.bootMenu { b.leaf("bootmenu", ["enable": "yes"]) }
        b.close()

        b.open("features")
        b.leaf("acpi")
        if firmware == .uefiSecure { b.leaf("smm", ["state": "on"]) }
        b.close()
        b.leaf("clock", ["offset": "utc"])
        b.leaf("on_poweroff", text: "destroy")
        b.leaf("on_reboot", text: "restart")

        b.open("devices")
        b.leaf("emulator", text: "/usr/bin/qemu-system-\(arch)")
        try Self.disks(&b, s, home: home, environment: environment)
        try Self.nics(&b, s)
        if try s.serialLog() {
            b.open("serial", ["type": "file"])
            b.leaf("source", ["path": home.appendingPathComponent(serialFile)])
            b.leaf("target", ["port": "0"])
            b.close()
        } else {
            b.open("serial", ["type": "pty"])
            b.leaf("target", ["port": "0"])
            b.close()
        }
        if tablet { b.leaf("input", ["type": "tablet", "bus": "usb"]) }
        try Self.display(&b, s)
        for share in try s.shares(home: home, environment: environment) {
            if share.transport == .virtiofs {
                b.note(SettingKey.share(share.id).transport, "virtiofs needs shared guest memory and libvirt's virtiofsd; exported as 9p")
            }
            b.open("filesystem", ["type": "mount", "accessmode": share.mode == .rw ? "mapped" : "squash"])
            b.leaf("source", ["dir": share.path])
            b.leaf("target", ["dir": share.tag])
            if share.mode == .ro { b.leaf("readonly") }
            b.close()
        }
        for (id, device) in try s.usbDevices() {
            switch device {
            case let .id(vendor, product):
                b.open("hostdev", ["mode": "subsystem", "type": "usb", "managed": "no"])
                b.open("source")
                b.leaf("vendor", ["id": "0x" + vendor])
                b.leaf("product", ["id": "0x" + product])
                b.close()
                b.close()
            case .port:
                b.note(SettingKey.usbDevice(id), "libvirt selects a host USB device by vendor:product or by bus and device number, not by port (\(device.description))")
            }
        }
        // libvirt gives the channel a socket of its own (virsh domifaddr --source agent).
        if try s.guestAgentEnabled() {
            b.open("channel", ["type": "unix"])
            b.leaf("target", ["type": "virtio", "name": "org.qemu.guest_agent.0"])
            b.close()
        }
        if try s.tpm() == .v2 {
            b.open("tpm", ["model": "tpm-crb"])
            b.leaf("backend", ["type": "emulator", "version": "2.0"])
            b.close()
            if FileSystem.exists(home.appendingPathComponent(VMFileNames.tpmDirectory)) {
                b.note(SettingKey.tpm, "libvirt keeps its own TPM state; the state in \(VMFileNames.tpmDirectory)/ is not carried over")
            }
        }
        b.close()

        if !params.isEmpty {
            b.note(SettingKey.qemuParams, "extra QEMU arguments (\(params.joined(separator: " "))); add them in <qemu:commandline> by hand if needed")
        }
        if try s.cloudInitEnabled() {
            b.note(SettingKey.cloudInitEnable, "vmup makes the cloud-init seed at each start; attach a seed ISO as a CD-ROM")
        }
        if !s.macosOSK.isEmpty { b.note(SettingKey.macosOSK, "the macOS SMC key") }
        b.close()
        xml = b.text
        notes = b.notes
    }

    // MARK: devices

    private static func disks(_ b: inout Builder, _ s: VMSettings, home: String, environment: [String: String]) throws {
        let ceiling = try s.rwMode()
        let bus = try s.hddInterface()
        for n in s.hddSlots where s.hdd(n).enabled {
            let disk = s.hdd(n), keys = disk.keys
            // The same refusals as vmup's (storage_hdd): never a half domain.
            let value = disk.backend.isEmpty && !disk.createsizeText.isEmpty ? "hdd\(n).qcow2" : disk.backend
            guard !value.isEmpty else { throw s.invalid(keys.backend, "disk \(n) is enabled but has no backend file") }
            if bus == .ide, n > 2 {
                throw s.invalid(SettingKey.hddInterface, "IDE has room for two hard disks (hdd1, hdd2); \(keys.prefix) needs \(SettingKey.hddInterface)=virtio")
            }
            let backend = StorageBackend(value)
            if backend.isRemote {
                b.note(keys.backend, "a remote disk (\(backend.location)); define it as a <disk type='network'> by hand")
                continue
            }
            let path = backend.path(home: home, environment: environment)
            if FileSystem.isDirectory(path) {
                b.note(keys.backend, "a directory served as a FAT disk (QEMU's vvfat)")
                continue
            }
            if let problem = FileSystem.imageFileProblem(path) { throw s.invalid(keys.backend, problem) }
            let format = ImageFormat.detect(path) ?? "qcow2"
            // As vmup holds each disk under vm_storage_rwmode (vm.settings(5)).
            var mode: VMSettings.DiskMode
            switch backend.prefix {
            case "rw": mode = ceiling
            case "snap": mode = ceiling == .ro ? .ro : .snap
            case "ro": mode = .ro
            default: mode = format == "qcow2" || format == "raw" ? ceiling : (ceiling == .rw ? .snap : ceiling)
            }
            // IDE cannot hold a read-only disk: vmup moves it to virtio too.
            let diskBus = mode == .ro ? .virtio : bus
            b.open("disk", ["type": "file", "device": "disk"])
            var driver = ["name": "qemu", "type": format]
            if mode == .rw { driver["discard"] = "unmap"; driver["detect_zeroes"] = "unmap" }
            b.leaf("driver", driver)
            b.leaf("source", ["file": path])
            b.leaf("target", ["dev": Self.deviceName(diskBus == .virtio ? "vd" : "hd", n - 1), "bus": diskBus.rawValue])
            if mode == .ro { b.leaf("readonly") }
            if mode == .snap { b.leaf("transient") }
            b.close()
        }
        var scsi = false
        for n in s.cdromSlots where s.cdrom(n).enabled {
            let cd = s.cdrom(n)
            b.open("disk", ["type": "file", "device": "cdrom"])
            b.leaf("driver", ["name": "qemu", "type": "raw"])
            if !cd.backend.isEmpty {
                let backend = StorageBackend(cd.backend)
                let path = backend.path(home: home, environment: environment)
                if backend.isRemote {
                    b.note(cd.keys.backend, "a remote CD-ROM image (\(backend.location))")
                } else if FileSystem.isDirectory(path) {
                    b.note(cd.keys.backend, "a directory vmup packs into an ISO at each start; pack it and name the ISO")
                } else if let problem = FileSystem.imageFileProblem(path) {
                    throw s.invalid(cd.keys.backend, problem)
                } else {
                    b.leaf("source", ["file": path])
                }
            }
            // CD-ROMs 1 and 2 on the secondary IDE channel, further ones on SCSI, as vmup.
            if n <= 2 {
                b.leaf("target", ["dev": Self.deviceName("hd", n + 1), "bus": "ide"])
            } else {
                scsi = true
                b.leaf("target", ["dev": Self.deviceName("sd", n - 3), "bus": "scsi"])
            }
            b.leaf("readonly")
            b.close()
        }
        if scsi { b.leaf("controller", ["type": "scsi", "model": "virtio-scsi"]) }
    }

    /// `vda`, `hdc`, `sdaa`: libvirt's disk names.
    static func deviceName(_ prefix: String, _ index: Int) -> String {
        var n = index, suffix = ""
        repeat {
            suffix = String(UnicodeScalar(UInt8(97 + n % 26))) + suffix
            n = n / 26 - 1
        } while n >= 0
        return prefix + suffix
    }

    private static func nics(_ b: inout Builder, _ s: VMSettings) throws {
        for id in s.nicIDs where s.nic(id).enabled {
            let nic = s.nic(id)
            let model = try nic.model()
            if model == .none { continue }
            let forwards = try nic.forwards()
            var attributes: [String: String] = [:]
            switch model {
            case .nat(let options):
                attributes["type"] = "user"
                if !options.isEmpty { b.note(nic.modeSource, "user-mode options (\(options))") }
            case .passt:
                // The 9.0 schema lists it, but its parser refuses
                // <backend type='passt'/> (Docs/vminfo.1).
                attributes["type"] = "user"
                b.note(nic.modeSource, "passt: libvirt 9.0 has no passt backend; exported as user-mode (slirp) networking")
            case .bridge: attributes["type"] = "bridge"
            case .tap: attributes["type"] = "ethernet"
            case .raw(let mode):
                b.note(nic.modeSource, "a raw QEMU -netdev value (\(mode))")
                continue
            case .none: continue
            }
            b.open("interface", attributes)
            b.leaf("mac", ["address": try nic.mac()])
            switch model {
            case .bridge(let bridge): b.leaf("source", ["bridge": bridge])
            case .tap(let ifname): b.leaf("target", ["dev": ifname, "managed": "no"])
            default: break
            }
            let name = try nic.device()
            b.leaf("model", ["type": name == "virtio-net-pci" || name == "virtio-net" ? "virtio" : name])
            // libvirt forwards ports only with the passt backend, which 9.0 lacks.
            for f in forwards { b.note(nic.keys.forward, "\(f.description): libvirt 9.0 forwards no ports on a user-mode interface") }
            b.close()
        }
    }

    private static func display(_ b: inout Builder, _ s: VMSettings) throws {
        let device = try s.displayDevice()
        guard device != "none" else {
            b.open("video")
            b.leaf("model", ["type": "none"])
            b.close()
            return
        }
        let type = try s.displayType()
        let clipboard = try s.displayClipboard()
        if try s.displayFullscreen() { b.note(SettingKey.displayFullscreen, "libvirt opens no window in full screen") }
        switch type {
        case .none: break
        case .sdl, .gtk:
            if type == .gtk { b.note(SettingKey.displayType, "libvirt has no GTK display; exported as SDL") }
            b.leaf("graphics", ["type": "sdl"])
            if clipboard { b.note(SettingKey.displayClipboard, "the clipboard of an SDL window") }
        case .vnc, .spice:
            var attributes = ["type": type.rawValue]
            if s.displayOnUnixSocket {
                b.note(SettingKey.displayIface, "unix: libvirt places the display socket itself")
            }
            if let port = try s.displayPort() {
                attributes["port"] = String(port)
                attributes["autoport"] = "no"
            } else {
                attributes["autoport"] = "yes"
            }
            let iface = try s.displayIface()
            attributes["listen"] = iface.isEmpty || s.displayOnUnixSocket ? "127.0.0.1" : iface
            let keymap = try s.keyboardMapping()
            if !keymap.isEmpty { attributes["keymap"] = keymap }
            switch try s.displayPassword() {
            case .none: break
            case .generated: b.note(SettingKey.displayPassword, "auto: vmup makes a new password at each start; set passwd= by hand")
            case .file(let path):
                // A password file's whole content (vm.settings(5)).
                if let text = try FileSystem.readTextIfExists(path, limit: 4096) {
                    // vmup refuses such a file; the export does not guess.
                    if let problem = VMSettings.DisplayPassword.problem(Array(text.utf8)) {
                        b.note(SettingKey.displayPassword, "\(path) \(problem)")
                    } else {
                        attributes["passwd"] = text
                    }
                } else {
                    b.note(SettingKey.displayPassword, "cannot read \(path)")
                }
            }
            b.open("graphics", attributes)
            b.leaf("listen", ["type": "address", "address": iface])
            if type == .spice, clipboard { b.leaf("clipboard", ["copypaste": "yes"]) }
            b.close()
            if type == .vnc, clipboard { b.note(SettingKey.displayClipboard, "the clipboard of a VNC display (QEMU's vdagent)") }
        }
        let video: String? = switch device {
        case "std", "VGA", "": "vga"
        case "cirrus", "qxl", "virtio", "bochs", "ramfb": device
        case "vmware": "vmvga"
        default: nil
        }
        if let video {
            b.open("video")
            b.leaf("model", ["type": type == .spice ? "qxl" : video])
            b.close()
        } else {
            b.note(SettingKey.displayDevice, "the graphics card \(device)")
        }
    }
}

extension LibvirtDomain {
    /// The name libvirt takes: `/` becomes `-`, a line break a space; empty is `vm`.
    static func domainName(_ name: String) -> String {
        let mapped = String(String.UnicodeScalarView(name.unicodeScalars.map { c -> Unicode.Scalar in
            switch c {
            case "/": return "-"
            case "\n", "\r": return " "
            default: return c
            }
        }))
        return mapped.isEmpty ? "vm" : mapped
    }
}

/// An indented XML writer; attributes in name order so the output is stable.
struct Builder {
    var text = ""
    var notes: [String] = []
    var stack: [String] = []

    var indent: String { String(repeating: "  ", count: stack.count) }

    static func escape(_ s: String, attribute: Bool = false) -> String { XMLText.escape(s, attribute: attribute) }

    func tag(_ name: String, _ attributes: [String: String]) -> String {
        ([name] + attributes.sorted { $0.key < $1.key }.map { "\($0.key)='\(Self.escape($0.value, attribute: true))'" }).joined(separator: " ")
    }

    mutating func open(_ name: String, _ attributes: [String: String] = [:]) {
        text += indent + "<\(tag(name, attributes))>\n"
        stack.append(name)
    }

    mutating func close() {
        let name = stack.removeLast()
        text += indent + "</\(name)>\n"
    }

    mutating func leaf(_ name: String, _ attributes: [String: String] = [:], text body: String? = nil) {
        if let body {
            text += indent + "<\(tag(name, attributes))>\(Self.escape(body))</\(name)>\n"
        } else {
            text += indent + "<\(tag(name, attributes))/>\n"
        }
    }

    /// A setting libvirt cannot express: a comment here, a line for stderr.
    mutating func note(_ setting: String, _ why: String) {
        let line = "\(setting): not expressible in libvirt: \(why)"
        notes.append(line)
        text += indent + "<!-- \(XMLText.comment(Self.escape(line))) -->\n"
    }
}
