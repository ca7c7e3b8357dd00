import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// `vminfo -L` (vminfo(1)): each exported VM passes libvirt's own schema
/// (`define --validate`, test driver, no daemon), and libvirt keeps every
/// element and attribute written (without `--validate` it would drop
/// unknown ones silently). What libvirt cannot express is a comment in the
/// XML and a NOTE on stderr, naming the setting.
@Suite struct LibvirtExportTests {
    /// A VM home in a scratch tree, with qcow2 disks made by qemu-img.
    struct Homes {
        let s = Scratch()
        let cli: CLI

        init() throws {
            cli = try CLI(s)
            // Golden output must not depend on whether this machine has KVM.
            try s.write("etc/vmtools.conf", "vm_qemu_accel=tcg\n")
        }

        func disk(_ rel: String, backing: String? = nil) throws {
            try FileManager.default.createDirectory(atPath: s.url(rel).deletingLastPathComponent, withIntermediateDirectories: true)
            var args = ["create", "-q", "-f", "qcow2"]
            if let backing { args += ["-b", backing, "-F", "qcow2"] }
            let r = try Subprocess("/usr/bin/qemu-img", args + [s.url(rel)] + (backing == nil ? ["16M"] : [])).run()
            #expect(r.status == 0, "\(r.stderrText)")
        }

        func export(_ home: String) throws -> CLI.Result { try cli.run("vminfo", ["-L", "--", home]) }

        /// `define --validate` then `dumpxml` (with the display password), in one virsh, the test driver
        /// forgets everything between connections.
        func defineAndDump(_ xml: String, name: String) throws -> (status: Int32, dump: String, err: String) {
            let file = try s.write("domain-\(UUID().uuidString).xml", xml)
            let r = try Subprocess("/usr/bin/virsh", ["-q", "-c", "test:///default", "define --validate \(file); dumpxml --security-info \(name)"]).run()
            return (r.status, r.stdoutText, r.stderrText)
        }
    }

    /// Every element by its path, with each attribute: `domain/devices/disk/target@bus=virtio`.
    static func facts(_ xml: String) -> Set<String> {
        var facts: Set<String> = []
        var stack: [String] = []
        var rest = Substring(xml)
        while let lt = rest.firstIndex(of: "<") {
            rest = rest[rest.index(after: lt)...]
            if rest.hasPrefix("!--") {
                guard let end = rest.range(of: "-->") else { break }
                rest = rest[end.upperBound...]
                continue
            }
            guard let gt = rest.firstIndex(of: ">") else { break }
            let tag = rest[..<gt]
            rest = rest[rest.index(after: gt)...]
            if tag.hasPrefix("?") { continue }
            if tag.hasPrefix("/") { stack.removeLast(); continue }
            let selfClosing = tag.hasSuffix("/")
            let body = selfClosing ? tag.dropLast() : tag
            let name = String(body.prefix { !$0.isWhitespace })
            stack.append(name)
            let path = stack.joined(separator: "/")
            facts.insert(path)
            // name='value' or name="value"
            var attrs = body.dropFirst(name.count)
            while let eq = attrs.firstIndex(of: "=") {
                let key = attrs[..<eq].trimmingCharacters(in: .whitespaces)
                let quote = attrs[attrs.index(after: eq)]
                let valueStart = attrs.index(eq, offsetBy: 2)
                guard let close = attrs[valueStart...].firstIndex(of: quote) else { break }
                let value = attrs[valueStart..<close].replacingOccurrences(of: "&apos;", with: "'").replacingOccurrences(of: "&quot;", with: "\"")
                    .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
                facts.insert("\(path)@\(key)=\(value)")
                attrs = attrs[attrs.index(after: close)...]
            }
            if selfClosing { stack.removeLast() }
        }
        return facts
    }

    /// Facts libvirt rewrites rather than drops: units and defaults it
    /// spells its own way.
    static let normalised: Set<String> = ["domain/memory@unit=MiB"]

    /// Defines the export with `--validate` and checks that libvirt kept all of it.
    func validate(_ lab: Homes, _ xml: String, name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let r = try lab.defineAndDump(xml, name: name)
        #expect(r.status == 0, "\(r.err)\n\(xml)", sourceLocation: sourceLocation)
        let dropped = Self.facts(xml).subtracting(Self.facts(r.dump)).subtracting(Self.normalised)
        #expect(dropped.isEmpty, "libvirt dropped \(dropped.sorted())\n\(r.dump)", sourceLocation: sourceLocation)
    }

    @Test(.requires("virsh", "qemu-img")) func aPlainVMIsTheGoldenDomainAndLibvirtKeepsAllOfIt() throws {
        guard requireTool("virsh") != nil else { return }
        let lab = try Homes()
        try lab.disk("web/disk.qcow2")
        try lab.s.write("web/cd.iso", String(repeating: "\0", count: 2048))
        try lab.s.write("pw", "s3cr'et&")
        let home = try lab.s.write("web/vm.settings", """
            vm_name='web & <db>'
            vm_uuid=0f8fad5b-d9cb-469f-a165-70867728950e
            vm_ram_size=1G
            vm_cpu_count=2
            vm_cpu_type=host
            vm_storage_hdd1_enable=yes
            vm_storage_hdd1_backend=disk.qcow2
            vm_storage_cdrom1_enable=yes
            vm_storage_cdrom1_backend=cd.iso
            vm_boot_order=cd
            vm_networking_iface1_enable=yes
            vm_networking_iface1_mac=52:54:00:12:34:56
            vm_networking_iface1_device=virtio-net-pci
            vm_serial_log=yes
            vm_display_type=vnc
            vm_display_iface=127.0.0.1
            vm_display_port=5905
            vm_display_password=\(lab.s.url("pw"))

            """).deletingLastPathComponent
        let r = try lab.export(home)
        #expect(r.status == 0, "\(r.err)")
        let h = lab.s.url("web")
        #expect(r.out == """
            <domain type='qemu'>
              <name>web &amp; &lt;db&gt;</name>
              <uuid>0f8fad5b-d9cb-469f-a165-70867728950e</uuid>
              <memory unit='MiB'>1024</memory>
              <vcpu>2</vcpu>
              <cpu mode='maximum'/>
              <os>
                <type arch='x86_64' machine='pc'>hvm</type>
                <boot dev='hd'/>
                <boot dev='cdrom'/>
              </os>
              <features>
                <acpi/>
              </features>
              <clock offset='utc'/>
              <on_poweroff>destroy</on_poweroff>
              <on_reboot>restart</on_reboot>
              <devices>
                <emulator>/usr/bin/qemu-system-x86_64</emulator>
                <disk device='disk' type='file'>
                  <driver detect_zeroes='unmap' discard='unmap' name='qemu' type='qcow2'/>
                  <source file='\(h)/disk.qcow2'/>
                  <target bus='ide' dev='hda'/>
                </disk>
                <disk device='cdrom' type='file'>
                  <driver name='qemu' type='raw'/>
                  <source file='\(h)/cd.iso'/>
                  <target bus='ide' dev='hdc'/>
                  <readonly/>
                </disk>
                <interface type='user'>
                  <mac address='52:54:00:12:34:56'/>
                  <model type='virtio'/>
                </interface>
                <serial type='file'>
                  <source path='\(h)/serial.log'/>
                  <target port='0'/>
                </serial>
                <input bus='usb' type='tablet'/>
                <graphics autoport='no' listen='127.0.0.1' passwd='s3cr&apos;et&amp;' port='5905' type='vnc'>
                  <listen address='127.0.0.1' type='address'/>
                </graphics>
                <video>
                  <model type='vga'/>
                </video>
              </devices>
            </domain>

            """, "\(r.out)")
        #expect(r.err.isEmpty, "\(r.err)")
        try validate(lab, r.out, name: "'web & <db>'")
    }

    @Test func underKVMTheDomainIsKVMAndTheHostCPUPassesThrough() throws {
        let s = Scratch()
        try s.write("vm/vm.settings", "vm_name=k\nvm_cpu_type=host\nvm_display_type=none\n")
        let global = try resolver(s).loadGlobal()
        let vm = try resolver(s).loadVM(home: s.url("vm"), global: global)
        let kvm = try LibvirtDomain(vm, accelerator: .kvm, global: global, environment: [:])
        #expect(kvm.xml.hasPrefix("<domain type='kvm'>"))
        #expect(kvm.xml.contains("<cpu mode='host-passthrough'/>"))
        let tcg = try LibvirtDomain(vm, accelerator: .tcg, global: global, environment: [:])
        #expect(tcg.xml.hasPrefix("<domain type='qemu'>"))
        #expect(tcg.xml.contains("<cpu mode='maximum'/>"))
    }

    @Test(.requires("virsh", "qemu-img")) func aSecureUEFIVMWithATPMNamesWhatLibvirtCannotTake() throws {
        guard requireTool("virsh") != nil else { return }
        let lab = try Homes()
        try lab.disk("win/disk.qcow2")
        try lab.disk("win/firmware-vars.qcow2")
        try lab.s.mkdir("win/tpm")
        let home = try lab.s.write("win/vm.settings", """
            vm_name=win
            vm_firmware=uefi-secure
            vm_tpm=2.0
            vm_storage_hdd_interface=virtio
            vm_storage_hdd1_enable=yes
            vm_storage_hdd1_backend=disk.qcow2
            vm_display_type=none

            """).deletingLastPathComponent
        let r = try lab.export(home)
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("""
              <os firmware='efi'>
                <type arch='x86_64' machine='q35'>hvm</type>
                <firmware>
                  <feature enabled='yes' name='enrolled-keys'/>
                  <feature enabled='yes' name='secure-boot'/>
                </firmware>
            """), "\(r.out)")
        #expect(r.out.contains("<smm state='on'/>"))
        #expect(r.out.contains("""
                <tpm model='tpm-crb'>
                  <backend type='emulator' version='2.0'/>
                </tpm>
            """), "\(r.out)")
        #expect(r.out.contains("<target bus='virtio' dev='vda'/>"))
        for setting in ["vm_firmware", "vm_tpm"] {
            #expect(r.err.contains("vminfo: NOTE: \(setting): not expressible in libvirt: "), "\(r.err)")
            #expect(r.out.contains("<!-- \(setting): not expressible in libvirt: "), "\(r.out)")
        }
        try validate(lab, r.out, name: "win")

        // Plain UEFI: the same firmware, no Secure Boot.
        try lab.s.write("win/vm.settings", "vm_name=win\nvm_firmware=uefi\nvm_display_type=none\n")
        let uefi = try lab.export(home)
        #expect(uefi.out.contains("<feature enabled='no' name='secure-boot'/>") && uefi.out.contains("machine='pc'"), "\(uefi.out)")
        try validate(lab, uefi.out, name: "win")
    }

    @Test(.requires("virsh", "qemu-img")) func aForkExportsItsOwnOverlayAndASnapshotModeDiskIsTransient() throws {
        guard requireTool("virsh") != nil else { return }
        let lab = try Homes()
        try lab.disk("base/disk.qcow2")
        try lab.s.write("base/vm.settings", "vm_name=base\nvm_storage_hdd1_enable=yes\nvm_storage_hdd1_backend=disk.qcow2\nvm_display_type=none\n")
        let fork = try lab.cli.run("vmfork", [lab.s.url("base"), lab.s.url("base/f1")])
        try #require(fork.status == 0, "\(fork.err)")
        let r = try lab.export(lab.s.url("base/f1"))
        #expect(r.status == 0, "\(r.err)")
        let source = try #require(r.out.split(separator: "\n").first { $0.contains("<source file=") })
        #expect(source.contains("'\(lab.s.url("base/f1"))/"), "the fork's overlay, not its parent's disk: \(source)")
        #expect(!r.out.contains("<backingStore"), "libvirt reads the chain from the image")
        try validate(lab, r.out, name: "f1")

        // snap: and ro: disks as vmup starts them.
        try lab.s.write("base/vm.settings", "vm_name=base\nvm_storage_hdd1_enable=yes\nvm_storage_hdd1_backend=snap:disk.qcow2\nvm_storage_hdd2_enable=yes\nvm_storage_hdd2_backend=ro:disk.qcow2\nvm_display_type=none\n")
        let modes = try lab.export(lab.s.url("base"))
        #expect(modes.out.contains("""
                  <target bus='ide' dev='hda'/>
                  <transient/>
            """), "\(modes.out)")
        #expect(modes.out.contains("""
                  <target bus='virtio' dev='vdb'/>
                  <readonly/>
            """), "\(modes.out)")
        try validate(lab, modes.out, name: "base")
    }

    @Test(.requires("virsh")) func everyNetworkModelAndEachForwardIsExportedOrNamed() throws {
        guard requireTool("virsh") != nil else { return }
        let lab = try Homes()
        let home = try lab.s.write("net/vm.settings", """
            vm_name=net
            vm_display_type=none
            vm_networking_iface1_enable=yes
            vm_networking_iface1_mode=passt
            vm_networking_iface1_mac=52:54:00:00:00:01
            vm_networking_iface1_forward='2222:22 udp:127.0.0.1:5353:53 0:80'
            vm_networking_iface2_enable=yes
            vm_networking_iface2_mode=nat
            vm_networking_iface2_mac=52:54:00:00:00:02
            vm_networking_iface2_forward=8080:80
            vm_networking_iface3_enable=yes
            vm_networking_iface3_mode=bridge:br0
            vm_networking_iface3_mac=52:54:00:00:00:03
            vm_networking_iface4_enable=yes
            vm_networking_iface4_mode=tap:tap7
            vm_networking_iface4_mac=52:54:00:00:00:04
            vm_networking_iface4_device=rtl8139
            vm_networking_iface5_enable=yes
            vm_networking_iface5_mode=none

            """).deletingLastPathComponent
        let r = try lab.export(home)
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("""
                <interface type='user'>
                  <mac address='52:54:00:00:00:01'/>
                  <model type='e1000-82545em'/>
                  <!-- vm_networking_iface1_forward: not expressible in libvirt: tcp:127.0.0.1:2222:22: libvirt 9.0 forwards no ports on a user-mode interface -->
            """), "\(r.out)")
        #expect(r.out.contains("<source bridge='br0'/>"))
        #expect(r.out.contains("<target dev='tap7' managed='no'/>") && r.out.contains("<model type='rtl8139'/>"))
        #expect(r.out.components(separatedBy: "<interface ").count == 5, "four interfaces, none for mode none: \(r.out)")
        // Each forward and the passt mode, named; nothing else.
        #expect(r.err == """
            vminfo: NOTE: vm_networking_iface1_mode: not expressible in libvirt: passt: libvirt 9.0 has no passt backend; exported as user-mode (slirp) networking
            vminfo: NOTE: vm_networking_iface1_forward: not expressible in libvirt: tcp:127.0.0.1:2222:22: libvirt 9.0 forwards no ports on a user-mode interface
            vminfo: NOTE: vm_networking_iface1_forward: not expressible in libvirt: udp:127.0.0.1:5353:53: libvirt 9.0 forwards no ports on a user-mode interface
            vminfo: NOTE: vm_networking_iface1_forward: not expressible in libvirt: tcp:127.0.0.1:0:80: libvirt 9.0 forwards no ports on a user-mode interface
            vminfo: NOTE: vm_networking_iface2_forward: not expressible in libvirt: tcp:127.0.0.1:8080:80: libvirt 9.0 forwards no ports on a user-mode interface

            """, "\(r.err)")
        try validate(lab, r.out, name: "net")
    }

    @Test(.requires("virsh")) func sharesAndUSBDevicesAreExportedAndAUSBPortIsNamed() throws {
        guard requireTool("virsh") != nil else { return }
        let lab = try Homes()
        try lab.s.mkdir("src")
        try lab.s.mkdir("docs")
        let home = try lab.s.write("sh/vm.settings", """
            vm_name=sh
            vm_display_type=none
            vm_share1_path=\(lab.s.url("src"))
            vm_share1_tag=code
            vm_share2_path=\(lab.s.url("docs"))
            vm_share2_mode=ro
            vm_usb1_device=046d:c52b
            vm_usb2_device=1-2.3

            """).deletingLastPathComponent
        let r = try lab.export(home)
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("""
                <filesystem accessmode='mapped' type='mount'>
                  <source dir='\(lab.s.url("src"))'/>
                  <target dir='code'/>
                </filesystem>
                <filesystem accessmode='squash' type='mount'>
                  <source dir='\(lab.s.url("docs"))'/>
                  <target dir='docs'/>
                  <readonly/>
                </filesystem>
                <hostdev managed='no' mode='subsystem' type='usb'>
                  <source>
                    <vendor id='0x046d'/>
                    <product id='0xc52b'/>
                  </source>
                </hostdev>
            """), "\(r.out)")
        #expect(r.err == "vminfo: NOTE: vm_usb2_device: not expressible in libvirt: libvirt selects a host USB device by vendor:product or by bus and device number, not by port (1-2.3)\n", "\(r.err)")
        #expect(r.out.contains("<!-- vm_usb2_device: not expressible in libvirt:"))
        try validate(lab, r.out, name: "sh")
    }

    @Test func aBadSettingFailsNamingItAndPrintsNoXML() throws {
        let lab = try Homes()
        let home = try lab.s.write("bad/vm.settings", "vm_name=bad\nvm_tpm=1.2\n").deletingLastPathComponent
        let r = try lab.export(home)
        #expect(r.status == 1)
        #expect(r.out.isEmpty, "\(r.out)")
        #expect(r.err.contains("vm_tpm: '1.2'"), "\(r.err)")
        // What vmup refuses, -L refuses too, naming the setting.
        try lab.s.write("bad/vm.settings", "vm_name=bad\nvm_storage_hdd3_enable=yes\nvm_storage_hdd3_backend=x.qcow2\n")
        let ide = try lab.export(home)
        #expect(ide.status == 1 && ide.out.isEmpty)
        #expect(ide.err.contains("vm_storage_hdd_interface: 'ide'") && ide.err.contains("hdd3 needs vm_storage_hdd_interface=virtio"), "\(ide.err)")
        try lab.s.write("bad/vm.settings", "vm_name=bad\nvm_storage_hdd1_enable=yes\n")
        let empty = try lab.export(home)
        #expect(empty.status == 1 && empty.err.contains("vm_storage_hdd1_backend: ''"), "\(empty.err)")
        // vm_qemu_accel=kvm is a KVM domain wherever it is exported.
        try lab.s.write("bad/vm.settings", "vm_name=bad\nvm_qemu_accel=kvm\n")
        let kvm = try lab.export(home)
        #expect(kvm.status == 0 && kvm.out.hasPrefix("<domain type='kvm'>"), "\(kvm.err)")
    }

    /// The guest agent's channel (vm_guestagent_enable) becomes libvirt's,
    /// so `virsh domifaddr --source agent` works after the move.
    @Test(.requires("virsh")) func theGuestAgentChannelIsExported() throws {
        guard requireTool("virsh") != nil else { return }
        let lab = try Homes()
        let home = try lab.s.write("ga/vm.settings", "vm_name=ga\nvm_guestagent_enable=yes\n").deletingLastPathComponent
        let r = try lab.export(home)
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("<channel type='unix'>\n      <target name='org.qemu.guest_agent.0' type='virtio'/>\n    </channel>"), "\(r.out)")
        try validate(lab, r.out, name: "ga")
        try lab.s.write("ga/vm.settings", "vm_name=ga\nvm_guestagent_enable=no\n")
        #expect(!(try lab.export(home)).out.contains("<channel"))
    }
}
