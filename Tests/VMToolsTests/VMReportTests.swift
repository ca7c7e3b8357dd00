import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// vminfo's text and `-j` are two renderings of one `VMReport` (vminfo(1)),
/// as vmps's table and `-j` are of one field table (vmps(1)):
/// each fact the general information and storage sections show is in the
/// JSON with the same value, read from the same report, so the two cannot
/// drift apart. The byte-exact outputs are VMInfoTests' and the feature
/// suites' (FirmwareTests, TPMTests, USBTests, ShareTests).
@Suite struct VMReportTests {
    /// What the text shows and `-j` does not: mount commands, the display
    /// password, the space used in the home. A new text fact must join
    /// the JSON or this list.
    static let textOnly: Set<String> = ["Share", "Display password", "Disk"]

    /// Every part gathered, as `vminfo -il` and `vminfo -j` would.
    func report(_ s: Scratch, _ home: String, environment: [String: String] = [:]) throws -> VMReport {
        let global = try resolver(s).loadGlobal()
        let vm = try resolver(s).loadVM(home: s.url(home), global: global)
        let parts = VMReport.Parts.json.union(.text(VMInfoCommand.Section.allCases, long: true)).subtracting([.imageText, .imageJSON])
        return VMReport(vm, parts: parts, sampled: nil, global: global, environment: environment)
    }

    /// Checks each text line of the general information and storage
    /// sections against the JSON object of the same report.
    func expectAgreement(_ report: VMReport, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let json = report.json
        let state = try #require(json["state"], sourceLocation: sourceLocation)
        let running = state["running"] == .bool(true)
        func same(_ label: String, _ text: String, _ value: JSON?) {
            let shown: String?
            switch value {
            case .string(let v)?: shown = v
            case .number(let n)?: shown = n == n.rounded() ? String(Int(n)) : String(n)
            case .null?: shown = ""
            default: shown = nil
            }
            #expect(text == shown, "\(label): the text says '\(text)', the JSON \(String(describing: value))", sourceLocation: sourceLocation)
        }
        func error(_ label: String, _ text: String, _ value: JSON?) {
            #expect(text == "? (\(value?["error"]?.stringValue ?? "no error in the JSON"))", "\(label)", sourceLocation: sourceLocation)
        }
        func match(_ line: String, _ pattern: String) -> [String]? {
            guard let regex = try? Regex(pattern), let m = line.firstMatch(of: regex) else { return nil }
            return m.output.dropFirst().map { $0.substring.map(String.init) ?? "" }
        }
        var usb = (json["usb_devices"]?.arrayValue ?? []).makeIterator()
        var forwards = (state["forwards"]?.arrayValue ?? []).makeIterator()
        var snapshots = (json["snapshots"]?.arrayValue ?? []).makeIterator()
        var checked: Set<String> = []
        for line in report.infoLines(long: true) where !line.isEmpty {
            if let m = match(line, "^Name: (.*?) +Parent: ([01])$") {
                same("Name", m[0], json["name"])
                #expect(m[1] == (json["parent"] == .null ? "0" : "1"), sourceLocation: sourceLocation)
                checked.formUnion(["Name", "Parent"])
            } else if let m = match(line, "^State: (.*?) +Childs: ([0-9]+)$") {
                #expect(m[0] == (running ? "RUNNING (PID \(state["pid"]?.integerValue ?? -1))" : "not running"), sourceLocation: sourceLocation)
                same("Childs", m[1], .number(Double(json["children"]?.arrayValue?.count ?? -1)))
                checked.formUnion(["State", "Childs"])
            } else if let m = match(line, "^Mem: (.*?) *CPU: (.*?) *Disk: (.*)$") {
                #expect(m[0].trimmingCharacters(in: .whitespaces) == (state["memory_kb"]?.integerValue).map { Formatting.size(kilobytes: $0) } ?? "", sourceLocation: sourceLocation)
                #expect(m[1].trimmingCharacters(in: .whitespaces) == (state["cpu_percent"]?.numberValue).map { Formatting.twoDecimals($0) + " %" } ?? "", sourceLocation: sourceLocation)
                checked.formUnion(["Mem", "CPU", "Disk"])
            } else if let m = match(line, "^([A-Za-z /]+): (.*)$") {
                let (label, text) = (m[0], m[1])
                checked.insert(label)
                switch label {
                case "Display", "Monitor", "User": same(label, text, running ? state[label.lowercased()] ?? .null : .string(""))
                case "Accel": same(label, text, running ? state["accelerator"] : .string(""))
                case "USB" where text.hasPrefix("? ("): error(label, text, json["usb_devices"])
                case "USB":
                    let u = usb.next()
                    let node = u?["node"]?.stringValue.map { "at \($0)" } ?? "not plugged in"
                    #expect(text == "\(u?["device"]?.stringValue ?? "") (\(u?["setting"]?.stringValue ?? "")): \(node)", sourceLocation: sourceLocation)
                case "Firmware" where text.hasPrefix("? ("): error(label, text, json["firmware"])
                case "Firmware":
                    let name = { (key: String) in json[key]?.stringValue.map { URL(fileURLWithPath: $0).lastPathComponent } }
                    let vars = name("firmware_vars").map { "variables \($0)" } ?? "variables made on the first start"
                    let detail = name("firmware_code").map { "\($0), \(vars)" } ?? "no firmware descriptor fits; Debian: apt-get install ovmf"
                    #expect(text == "\(json["firmware"]?.stringValue ?? "") (\(detail))", sourceLocation: sourceLocation)
                case "TPM" where text.hasPrefix("? ("): error(label, text, json["tpm"])
                case "TPM": #expect(text.hasPrefix("\(json["tpm"]?.stringValue ?? "") ("), sourceLocation: sourceLocation)
                case "Forward" where text.hasPrefix("? ("): #expect(state["forwards"] == .null, sourceLocation: sourceLocation)
                case "Forward":
                    let f = forwards.next()
                    #expect(text == "\(f?["protocol"]?.stringValue ?? ""):\(f?["host_address"]?.stringValue ?? ""):\(f?["host_port"]?.integerValue ?? 0)->\(f?["guest_port"]?.integerValue ?? 0)",
                            sourceLocation: sourceLocation)
                case "SSH": same(label, text, state["ssh"])
                case "Guest agent": #expect(state["guest_agent"] != nil && state["guest_agent"] != .string("answering"), sourceLocation: sourceLocation)
                case "Guest addresses": #expect(state["guest_agent"] == .string("answering"), sourceLocation: sourceLocation)
                case "CPU now", "Memory", "Disk I/O", "Network", "Uptime": #expect(state["live"] != nil, sourceLocation: sourceLocation)
                case "Image": #expect(text == "\(json["image"]?["name"]?.stringValue ?? "") from \(json["image"]?["url"]?.stringValue ?? "")", sourceLocation: sourceLocation)
                case "Image digest": same(label, text, json["image"]?["digest"])
                case "Snapshot" where text.hasPrefix("? ("): error(label, text, json["snapshots"])
                case "Snapshot":
                    let snap = snapshots.next()
                    let state = snap?["complete"] != .bool(true) ? "incomplete" : snap?["live"] == .bool(true) ? "live" : "stopped"
                    #expect(text.hasPrefix("\(snap?["name"]?.stringValue ?? "") ("), sourceLocation: sourceLocation)
                    #expect(text.contains(", \(state)"), "\(line)", sourceLocation: sourceLocation)
                default: #expect(Self.textOnly.contains(label), "the text shows '\(line)', which -j does not carry", sourceLocation: sourceLocation)
                }
            } else {
                Issue.record("an information line of no known form: '\(line)'", sourceLocation: sourceLocation)
            }
        }
        #expect(usb.next() == nil && forwards.next() == nil && snapshots.next() == nil, "-j lists more than the text", sourceLocation: sourceLocation)
        if case .success(let tpm)? = report.tpm, tpm != .v2 { #expect(json["tpm"] == .string("none"), sourceLocation: sourceLocation) }
        // The storage section: one header per drive, then what the image is.
        let disks = json["disks"]?.arrayValue ?? []
        let headers = report.backendLines().filter { $0.hasPrefix("* ") }
        #expect(headers.count == disks.count, sourceLocation: sourceLocation)
        for (header, disk) in zip(headers, disks) {
            let backend = disk["backend"]?.stringValue ?? ""
            #expect(header.hasSuffix(backend.isEmpty ? ": Drive enabled, but no backend file selected." : ": \(backend)"), "\(header)", sourceLocation: sourceLocation)
            if let description = disk["description"]?.stringValue {
                #expect(report.backendLines().contains(description), sourceLocation: sourceLocation)
            }
        }
        #expect(!checked.isEmpty)
    }

    /// A stopped VM with every device fact the text shows: firmware and
    /// its store, TPM, USB (one plugged in), shares, local and remote disks.
    @Test func aStoppedVMsTextFactsAreItsJSONFacts() throws {
        let s = Scratch()
        var env = try FirmwareTests().debianLike(s)
        let node = try USBTests().fakeDevice(s, "1-2", vendor: "046d", product: "c52b", bus: 1, dev: 7)
        env["VMTOOLS_TEST_SYS_ROOT"] = s.url("sys")
        env["VMTOOLS_TEST_DEV_ROOT"] = s.url("dev")
        try s.mkdir("data")
        try s.write("vm/vm.settings", """
            vm_name=full
            vm_firmware=uefi-secure
            vm_tpm=2.0
            vm_usb1_device=046D:c52b
            vm_usb2_device=3-1.4
            vm_share1_path='\(s.url("data"))'
            vm_storage_hdd1_enable=yes
            vm_storage_hdd1_backend=disk.img
            vm_storage_hdd2_enable=yes
            vm_storage_hdd2_backend=nbd:localhost:1234
            vm_storage_cdrom1_enable=yes
            vm_image_name=debian-12
            vm_image_url=https://images.example/debian-12.qcow2
            vm_image_digest=sha256:\(String(repeating: "ab", count: 32))

            """)
        try s.writeBytes("vm/disk.img", [UInt8](repeating: 0, count: 510) + [0x55, 0xAA])
        try s.writeBytes("vm/firmware-vars.qcow2", [0x51, 0x46, 0x49, 0xFB])
        let r = try report(s, "vm", environment: env)
        try expectAgreement(r)
        // Every fact is there to compare: the test cannot pass on an empty section.
        let lines = r.infoLines(long: true)
        #expect(lines.contains("USB: 046d:c52b (vm_usb1_device): at \(node)"), "\(lines)")
        #expect(lines.contains("Firmware: uefi-secure (CODE,ms.fd, variables firmware-vars.qcow2)"), "\(lines)")
        #expect(lines.contains("TPM: 2.0 (swtpm, state in tpm/)"), "\(lines)")
        #expect(lines.contains("Image: debian-12 from https://images.example/debian-12.qcow2"), "\(lines)")
        #expect(lines.contains("Image digest: sha256:\(String(repeating: "ab", count: 32))"), "\(lines)")
        #expect(lines.contains { $0.hasPrefix("Share: data ") }, "\(lines)")
        #expect(r.backendLines().contains("DOS/MBR boot sector"))
    }

    /// Values the settings refuse: the text's `? (…)` is the JSON's `error`.
    @Test func aRefusedValueIsTheSameErrorInBoth() throws {
        let s = Scratch()
        try s.write("vm/vm.settings", "vm_name=bad\nvm_tpm=1.2\nvm_usb1_device=mouse\nvm_firmware=bogus\n")
        let r = try report(s, "vm")
        try expectAgreement(r)
        #expect(r.infoLines(long: true).filter { $0.contains(": ? (") }.count == 3)
    }

    /// A running QEMU with a forward to port 22 and an ssh.config: state,
    /// forwards and the ssh command agree, and so do vmps's fields.
    @Test(.requires("qemu-system-x86_64")) func aRunningVMsStateAndForwardsAgree() throws {
        guard let qemu = requireTool("qemu-system-x86_64") else { return }
        let s = Scratch()
        try s.write("vm/vm.settings", "vm_name=run\n")
        try s.write("vm/ssh.config", "Host run\n")
        let home = s.url("vm")
        let started = try Subprocess(qemu, ["-machine", "none", "-nodefaults", "-display", "none", "-daemonize", "-pidfile", home + "/qemu.pid",
                                            "-qmp", "unix:\(home)/qmp.sock,server=on,wait=off",
                                            "-netdev", "user,id=n0,hostfwd=tcp:127.0.0.1:0-:22"]).run()
        try #require(started.status == 0, "\(started.stderrText)")
        let pid = try #require(Int32(try s.read("vm/qemu.pid").trimmingCharacters(in: .whitespacesAndNewlines)))
        defer {
            kill(pid, SIGKILL)
            _ = waitUntil(20) { kill(pid, 0) != 0 }
        }
        let r = try report(s, "vm")
        try expectAgreement(r)
        let lines = r.infoLines(long: true)
        #expect(lines.contains { $0.hasPrefix("Forward: tcp:127.0.0.1:") && $0.hasSuffix("->22") }, "\(lines)")
        #expect(lines.contains("SSH: \(SSHConfig.command(home: home, name: "run"))"), "\(lines)")
        #expect(lines.contains("Accel: tcg"), "\(lines)")

        // vmps: each field's text and JSON value, of one process, say the same.
        let p = try #require(r.running?.process)
        for f in VMPsCommand.fields where !f.rate {
            let text = f.text(p, r.pidName), json = VMPsCommand.jsonValue(f, p, r.pidName)
            switch json {
            case .null: #expect(["", "-"].contains(text), "\(f.jsonKey): '\(text)' shown, null in JSON")
            case .string(let v): #expect(text == v, "\(f.jsonKey)")
            // Rounded to hundredths in both, each its own way.
            case .number(let n) where f.letter == "c": #expect(abs((Double(text) ?? -1) - n) <= 0.011, "\(f.jsonKey): '\(text)', \(n)")
            case .number(let n): #expect(text == String(Int(n)), "\(f.jsonKey)")
            case .array(let list) where f.letter == "e": #expect(text == list.compactMap(\.stringValue).map(shellQuote).joined(separator: " "))
            case .array(let list) where f.letter == "f":
                let shown = list.map { "\($0["protocol"]?.stringValue ?? ""):\($0["host_address"]?.stringValue ?? ""):\($0["host_port"]?.integerValue ?? 0)->\($0["guest_port"]?.integerValue ?? 0)" }
                #expect(text == shown.joined(separator: " ") && !shown.isEmpty, "\(f.jsonKey)")
            default: Issue.record("\(f.jsonKey): no comparison for \(json)")
            }
        }
    }

    /// `vminfo -t` gathers the tree alone: no process, devices, drives or
    /// modules (vminfo(1): -t stays fast).
    @Test func theTreeAloneAsksNothingElse() throws {
        let s = Scratch()
        try s.write("vm/vm.settings", "vm_name=t\nvm_usb1_device=046d:c52b\nvm_storage_hdd1_enable=yes\nvm_storage_hdd1_backend=disk.img\n")
        let global = try resolver(s).loadGlobal()
        let vm = try resolver(s).loadVM(home: s.url("vm"), global: global)
        let parts = VMReport.Parts.text([.tree], long: true)
        #expect(parts == [.tree])
        let r = VMReport(vm, parts: parts, sampled: nil, global: global, environment: [:])
        #expect(r.tree?.name == "t")
        #expect(r.usb == nil && r.firmware == nil && r.tpm == nil && r.shares == nil && r.children == nil)
        #expect(r.drives.isEmpty && r.modules.isEmpty && r.diskUsageKB == nil && r.snapshots == nil)
        #expect(VMReport.Parts.text([.info], long: false) == [.general, .access, .snapshots])
        #expect(!VMReport.Parts.text([.backend], long: false).contains(.imageText))
    }
}
