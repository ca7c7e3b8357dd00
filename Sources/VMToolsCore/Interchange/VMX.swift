/// A VMware `.vmx`: `key = "value"` lines (vmcreate(1) Imported appliances).
package enum VMX {
    package static func read(_ path: String) throws -> Appliance {
        guard let text = try FileSystem.readTextIfExists(path) else { throw VMToolsError(.failure, path, "cannot read") }
        var values: [String: String] = [:]
        for raw in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let line = raw.drop { $0.isWhitespace }
            guard !line.hasPrefix("#"), let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].filter { !$0.isWhitespace }.lowercased()
            var value = line[line.index(after: eq)...].drop { $0.isWhitespace }
            while value.last?.isWhitespace == true { value = value.dropLast() }
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = value.dropFirst().dropLast() }
            values[key] = String(value)
        }
        var d = OVFDescriptor(name: values["displayname"] ?? path.lastPathComponent)
        if let v = values["numvcpus"] {
            guard let n = Int(v), n > 0 else { throw VMToolsError(.failure, path, "numvcpus = \"\(v)\": expected a positive number") }
            d.cpus = n
        }
        if let v = values["memsize"] {
            // In bytes it must fit 64 bits: vm_ram_size is used as a byte count.
            guard let n = Int(v), n > 0, n <= Int.max >> 20 else { throw VMToolsError(.failure, path, "memsize = \"\(v)\": expected a size in MB") }
            d.memoryMB = n
        }
        d.efi = values["firmware"]?.lowercased() == "efi"
        d.secureBoot = d.efi && values["uefi.secureboot.enabled"]?.uppercased() == "TRUE"
        // Disks by bus, then controller, then unit: scsi0:0 before scsi0:1.
        var disks: [(order: [Int], file: String)] = []
        for (key, value) in values where key.hasSuffix(".filename") {
            let device = key.dropLast(".filename".count)
            guard let colon = device.firstIndex(of: ":") else { continue }
            let bus = device[..<colon].prefix { $0.isLetter }
            guard let rank = ["ide", "sata", "scsi", "nvme"].firstIndex(of: String(bus)),
                  let controller = Int(device[..<colon].dropFirst(bus.count)), let unit = Int(device[device.index(after: colon)...]) else { continue }
            guard values["\(device).present"]?.uppercased() != "FALSE" else { continue }
            let type = values["\(device).devicetype"]?.lowercased() ?? ""
            guard !type.contains("cdrom"), value.lowercased().hasSuffix(".vmdk") else { continue }
            disks.append(([rank, controller, unit], value))
        }
        let dir = path.deletingLastPathComponent
        var paths: [String] = []
        for disk in disks.sorted(by: { $0.order.lexicographicallyPrecedes($1.order) }) {
            // Only files beside the .vmx (vmcreate(1) Imported appliances): a
            // .vmx from elsewhere must not name a host file into the new disk.
            let file = try OVA.member(disk.file, in: dir, subject: path, what: "the .vmx")
            if let problem = OVA.problem(file) { throw VMToolsError(.failure, path, "the disk '\(disk.file)' it names \(problem)") }
            paths.append(file)
        }
        // Ethernet numbers may skip (ethernet0, ethernet2): the order is kept, not the numbers.
        for n in 0..<10 where values["ethernet\(n).present"] != nil || values["ethernet\(n).virtualdev"] != nil {
            if values["ethernet\(n).present"]?.uppercased() != "FALSE" {
                d.nics.append(values["ethernet\(n).virtualdev"] ?? "e1000")
                if let mac = values["ethernet\(n).address"] ?? values["ethernet\(n).generatedaddress"], !mac.isEmpty,
                   values["ethernet\(n).addresstype"]?.lowercased() == "static" {
                    d.macs[d.nics.count - 1] = mac.lowercased()
                }
            }
        }
        return Appliance(descriptor: d, disks: paths, work: nil)
    }
}
