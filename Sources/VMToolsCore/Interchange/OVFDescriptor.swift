/// What an OVF 1.0 descriptor says about one virtual system, as vmtools
/// writes and reads it (vmcp(1) OVF and OVA, vmcreate(1)): name, CPUs,
/// memory, disks in order, NIC models, firmware. The rest of a VM has no
/// place in an OVF that other hypervisors read; vmcp says so per setting.
package struct OVFDescriptor: Equatable, Sendable {
    package struct Disk: Equatable, Sendable {
        /// The file's name in the References section (`web-disk1.vmdk`).
        package var file: String
        package var capacity: Int
        /// The file's size, when known (References `ovf:size`).
        package var size: Int?
        package init(file: String, capacity: Int, size: Int? = nil) {
            self.file = file
            self.capacity = capacity
            self.size = size
        }
    }

    package var name: String
    package var cpus: Int?
    package var memoryMB: Int?
    package var disks: [Disk] = []
    /// OVF ResourceSubType of each NIC (`E1000`, `VirtIO`, `VmxNet3` …), in order.
    package var nics: [String] = []
    /// MAC addresses by NIC index, when the descriptor carries them.
    package var macs: [Int: String] = [:]
    package var efi = false
    package var secureBoot = false

    package init(name: String) { self.name = name }

    /// QEMU NIC device → OVF ResourceSubType, as VMware and VirtualBox name them.
    package static func subtype(ofDevice device: String) -> String {
        switch device.lowercased() {
        case let d where d.hasPrefix("e1000e"): return "E1000e"
        case let d where d.hasPrefix("e1000"): return "E1000"
        case let d where d.hasPrefix("virtio"): return "VirtIO"
        case "vmxnet3": return "VmxNet3"
        case "pcnet": return "PCNet32"
        default: return device
        }
    }

    /// OVF ResourceSubType (or a .vmx `virtualDev`) → QEMU device; nil when QEMU has no match.
    package static func device(ofSubtype subtype: String) -> String? {
        switch subtype.lowercased() {
        case "e1000": return "e1000"
        case "e1000e": return "e1000e"
        case "virtio", "virtio-net", "virtio-net-pci": return "virtio-net-pci"
        case "vmxnet3": return "vmxnet3"
        case "pcnet32", "pcnet", "vlance", "am79c970a", "am79c973": return "pcnet"
        default: return nil
        }
    }

    static let streamOptimized = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"

    // MARK: writing

    /// The descriptor as XML. rasd elements are in the schema's (alphabetical) order.
    package func render() -> String {
        func e(_ s: String) -> String { XMLText.escape(s, attribute: true) }
        func item(_ fields: [(String, String)]) -> String {
            "      <Item>\n" + fields.map { "        <rasd:\($0.0)>\(e($0.1))</rasd:\($0.0)>\n" }.joined() + "      </Item>\n"
        }
        var x = """
        <?xml version="1.0" encoding="UTF-8"?>
        <!-- Written by vmtools (vmcp -a). -->
        <Envelope ovf:version="1.0" xml:lang="en-US" xmlns="http://schemas.dmtf.org/ovf/envelope/1" \
        xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" \
        xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" \
        xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" \
        xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
          <References>

        """
        for (i, d) in disks.enumerated() {
            x += "    <File ovf:id=\"file\(i + 1)\" ovf:href=\"\(e(d.file))\"" + (d.size.map { " ovf:size=\"\($0)\"" } ?? "") + "/>\n"
        }
        x += "  </References>\n  <DiskSection>\n    <Info>Virtual disks</Info>\n"
        for (i, d) in disks.enumerated() {
            x += "    <Disk ovf:capacity=\"\(d.capacity)\" ovf:capacityAllocationUnits=\"byte\" ovf:diskId=\"vmdisk\(i + 1)\" "
                + "ovf:fileRef=\"file\(i + 1)\" ovf:format=\"\(Self.streamOptimized)\"/>\n"
        }
        x += "  </DiskSection>\n"
        if !nics.isEmpty {
            x += "  <NetworkSection>\n    <Info>Logical networks</Info>\n"
                + "    <Network ovf:name=\"nat\">\n      <Description>The network the VM's NICs connect to</Description>\n    </Network>\n"
                + "  </NetworkSection>\n"
        }
        x += """
          <VirtualSystem ovf:id="\(e(name))">
            <Info>A virtual machine</Info>
            <Name>\(e(name))</Name>
            <OperatingSystemSection ovf:id="1">
              <Info>The guest operating system</Info>
            </OperatingSystemSection>
            <VirtualHardwareSection>
              <Info>Virtual hardware requirements</Info>
              <System>
                <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
                <vssd:InstanceID>0</vssd:InstanceID>
                <vssd:VirtualSystemIdentifier>\(e(name))</vssd:VirtualSystemIdentifier>
                <vssd:VirtualSystemType>vmx-14</vssd:VirtualSystemType>
              </System>

        """
        var id = 0
        func next() -> String { id += 1; return String(id) }
        if let cpus {
            x += item([("AllocationUnits", "hertz * 10^6"), ("Description", "Number of virtual CPUs"), ("ElementName", "\(cpus) virtual CPU(s)"),
                       ("InstanceID", next()), ("ResourceType", "3"), ("VirtualQuantity", String(cpus))])
        }
        if let memoryMB {
            x += item([("AllocationUnits", "byte * 2^20"), ("Description", "Memory size"), ("ElementName", "\(memoryMB) MB of memory"),
                       ("InstanceID", next()), ("ResourceType", "4"), ("VirtualQuantity", String(memoryMB))])
        }
        if !disks.isEmpty {
            let controller = next()
            x += item([("Address", "0"), ("Description", "SCSI controller"), ("ElementName", "SCSI controller 0"),
                       ("InstanceID", controller), ("ResourceSubType", "lsilogic"), ("ResourceType", "6")])
            for i in disks.indices {
                x += item([("AddressOnParent", String(i)), ("ElementName", "Hard disk \(i + 1)"), ("HostResource", "ovf:/disk/vmdisk\(i + 1)"),
                           ("InstanceID", next()), ("Parent", controller), ("ResourceType", "17")])
            }
        }
        for (i, subtype) in nics.enumerated() {
            var fields = [(String, String)]()
            if let mac = macs[i] { fields.append(("Address", mac)) }
            fields += [("AddressOnParent", String(i + 7)), ("AutomaticAllocation", "true"), ("Connection", "nat"),
                       ("ElementName", "Network adapter \(i + 1)"), ("InstanceID", next()), ("ResourceSubType", subtype), ("ResourceType", "10")]
            x += item(fields)
        }
        if efi {
            x += "      <vmw:Config ovf:required=\"false\" vmw:key=\"firmware\" vmw:value=\"efi\"/>\n"
            if secureBoot { x += "      <vmw:Config ovf:required=\"false\" vmw:key=\"uefi.secureBoot.enabled\" vmw:value=\"true\"/>\n" }
        }
        x += "    </VirtualHardwareSection>\n  </VirtualSystem>\n</Envelope>\n"
        return x
    }

    // MARK: reading

    /// Reads the first virtual system of an OVF 1.x or 2.x descriptor; `subject` names it in errors.
    package static func parse(_ text: String, subject: String) throws -> OVFDescriptor {
        let root: XMLText
        do { root = try XMLText.read(text) } catch {
            throw VMToolsError(.failure, subject, "not an OVF descriptor: \(error)")
        }
        guard root.name == "Envelope" else {
            throw VMToolsError(.failure, subject, "not an OVF descriptor (no Envelope element)")
        }
        // The descriptor comes with a downloaded appliance: every number is
        // checked, and a product that does not fit an Int is refused, not trapped on.
        func number(_ text: String?, _ what: String) throws -> Int? {
            guard let text, !text.isEmpty else { return nil }
            guard let n = Int(text), n >= 0 else {
                throw VMToolsError(.failure, subject, "\(what) '\(text.prefix(40))' is not a whole number the descriptor can hold")
            }
            return n
        }
        func times(_ n: Int, _ unit: Int, _ what: String) throws -> Int {
            let (product, overflow) = n.multipliedReportingOverflow(by: unit)
            guard !overflow else { throw VMToolsError(.failure, subject, "\(what) is too large: \(n) units of \(unit) bytes do not fit 64 bits") }
            return product
        }
        guard let system = root.first("VirtualSystem") ?? root.first("VirtualSystemCollection")?.first("VirtualSystem") else {
            throw VMToolsError(.failure, subject, "the OVF descriptor has no VirtualSystem")
        }
        let name = system.first("Name")?.text ?? system.attributes["id"] ?? ""
        var d = OVFDescriptor(name: name)
        var files: [String: (href: String, size: Int?)] = [:]
        for f in root.first("References")?.all("File") ?? [] {
            if let id = f.attributes["id"], let href = f.attributes["href"] { files[id] = (href, try number(f.attributes["size"], "the size of \(href)")) }
        }
        struct DiskDef { var file: String; var size: Int?; var capacity: Int }
        var diskDefs: [String: DiskDef] = [:]
        var diskOrder: [String] = []
        for disk in root.first("DiskSection")?.all("Disk") ?? [] {
            guard let id = disk.attributes["diskId"], let ref = disk.attributes["fileRef"], let file = files[ref] else { continue }
            let capacity = try number(disk.attributes["capacity"], "the capacity of disk \(id)") ?? 0
            let unit = multiplier(disk.attributes["capacityAllocationUnits"] ?? "byte") ?? 1
            diskDefs[id] = DiskDef(file: file.href, size: file.size, capacity: try times(capacity, unit, "the capacity of disk \(id)"))
            diskOrder.append(id)
        }
        var used: [String] = []
        let hardware = system.first("VirtualHardwareSection")
        for item in (hardware?.children ?? []) where item.name == "Item" || item.name == "StorageItem" || item.name == "EthernetPortItem" {
            let type = item.first("ResourceType")?.text ?? ""
            switch type {
            case "3":
                d.cpus = try number(item.first("VirtualQuantity")?.text, "the number of CPUs")
            case "4":
                guard let q = try number(item.first("VirtualQuantity")?.text, "the memory size") else { break }
                let unit = multiplier(item.first("AllocationUnits")?.text ?? "byte * 2^20") ?? (1 << 20)
                d.memoryMB = try times(q, unit, "the memory size") / (1 << 20)
            case "10":
                d.nics.append(item.first("ResourceSubType")?.text ?? "")
                if let mac = item.first("Address")?.text, !mac.isEmpty { d.macs[d.nics.count - 1] = mac }
            case "17":
                let host = item.first("HostResource")?.text ?? ""
                for prefix in ["ovf:/disk/", "/disk/"] where host.hasPrefix(prefix) {
                    let id = String(host.dropFirst(prefix.count))
                    if diskDefs[id] != nil, !used.contains(id) { used.append(id) }
                }
            default: break
            }
        }
        // Disks in the hardware's order, then any the hardware does not place.
        for id in used + diskOrder.filter({ !used.contains($0) }) {
            if let def = diskDefs[id] { d.disks.append(Disk(file: def.file, capacity: def.capacity, size: def.size)) }
        }
        for config in hardware?.all("Config") ?? [] {
            let key = config.attributes["key"], value = config.attributes["value"]?.lowercased()
            if key == "firmware" { d.efi = value == "efi" }
            if key == "uefi.secureBoot.enabled" { d.secureBoot = value == "true" }
        }
        // VirtualBox writes its firmware into its own section.
        if let fw = system.first("Machine")?.first("Hardware")?.first("Firmware"), fw.attributes["type"]?.uppercased().hasPrefix("EFI") == true {
            d.efi = true
        }
        return d
    }

    /// `byte * 2^20`, `MegaBytes`, `KiloBytes` … → bytes per unit.
    static func multiplier(_ unit: String) -> Int? {
        let u = unit.filter { !$0.isWhitespace }.lowercased()
        switch u {
        case "byte", "bytes": return 1
        case "kilobytes", "kb": return 1 << 10
        case "megabytes", "mb": return 1 << 20
        case "gigabytes", "gb": return 1 << 30
        default:
            guard u.hasPrefix("byte*") else { return nil }
            let rest = u.dropFirst(5)
            if rest.hasPrefix("2^"), let p = Int(rest.dropFirst(2)), p >= 0, p < 62 { return 1 << p }
            if rest.hasPrefix("10^"), let p = Int(rest.dropFirst(3)), p >= 0, p < 19 { return (0..<p).reduce(1) { r, _ in r * 10 } }
            return nil
        }
    }
}
