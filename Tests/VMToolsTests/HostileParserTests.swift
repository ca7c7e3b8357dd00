import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// Parsers and numbers of untrusted input (issue 22, section 4): JSON and
/// XML nest only so deep, a number that does not fit is an error and never
/// a trap, and an appliance, a settings file, an image header or another
/// user's process with hostile numbers gives one line naming it. The
/// commands run as processes, so a crash shows as a signal exit status.
@Suite struct HostileParserTests {
    // MARK: JSON

    @Test func deepJSONIsAnErrorNotACrash() {
        for opener in ["[", "{\"a\":", "[{\"a\":"] {
            let open = String(repeating: opener, count: 300_000)
            #expect(throws: JSON.ParseError.self) { try JSON.parse(open) }
            #expect(throws: JSON.ParseError.self) { try JSON.parse(open + "1" + String(repeating: opener.hasPrefix("[{") ? "}]" : opener.hasPrefix("[") ? "]" : "}", count: 300_000)) }
        }
        // The bound, exactly: QEMU's and the agent's answers nest a few levels.
        let ok = String(repeating: "[", count: JSON.maximumDepth) + String(repeating: "]", count: JSON.maximumDepth)
        #expect((try? JSON.parse(ok)) != nil)
        #expect(throws: JSON.ParseError.self) { try JSON.parse("[" + ok + "]") }
    }

    /// Whole numbers past Int (and fractions) parse, but are no integer:
    /// `Int(1e300)` would trap.
    @Test(arguments: ["1e300", "-1e300", "9223372036854775808", "-9223372036854775809", "18446744073709551616", "1e19", "0.5", "-0.5", "1e-300",
                      "179769313486231570000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"])
    func numbersOutsideIntAreNoInteger(_ text: String) throws {
        let value = try JSON.parse(text)
        #expect(value.numberValue != nil)
        #expect(value.integerValue == nil, "\(text)")
        #expect(try JSON.parse("{\"prefix\": \(text)}")["prefix"]?.integerValue == nil)
    }

    @Test func integersThatFitAreRead() throws {
        #expect(try JSON.parse("128").integerValue == 128)
        #expect(try JSON.parse("-7").integerValue == -7)
        #expect(try JSON.parse("1e3").integerValue == 1000)
        // The largest Double below 2^63.
        #expect(try JSON.parse("9223372036854774784").integerValue == 9_223_372_036_854_774_784)
    }

    /// Infinity and NaN are no JSON numbers: refused, not read as inf.
    @Test(arguments: ["1e999", "-1e999", "1e99999999999999999999", "NaN", "nan", "Infinity", "-Infinity", "inf", "-", "1e", "--1", "+"])
    func numbersJSONCannotMeanAreRefused(_ text: String) {
        #expect(throws: JSON.ParseError.self) { try JSON.parse(text) }
        #expect(throws: JSON.ParseError.self) { try JSON.parse("[\(text)]") }
    }

    @Test func theWriterNeverWritesNaNOrInfinity() {
        #expect(JSON.array([.number(.nan), .number(.infinity), .number(-.infinity), .number(1e300)]).serialized(pretty: false)
                == "[null,null,null,1e+300]")
    }

    /// A high surrogate followed by anything but a low one: `low - 0xDC00` trapped.
    @Test func aLoneSurrogateIsReplacedNotATrap() throws {
        #expect(try JSON.parse(#""\uD800\u0041""#) == .string("\u{FFFD}A"))
        #expect(try JSON.parse(#""\uDBFF\uD800x""#) == .string("\u{FFFD}\u{FFFD}x"))
        #expect(try JSON.parse(#""\uD83D\uDE00""#) == .string("😀"))
    }

    // MARK: XML and OVF

    @Test func deepXMLIsAnErrorNotACrash() {
        let deep = String(repeating: "<a>", count: 200_000) + String(repeating: "</a>", count: 200_000)
        #expect(throws: XMLText.ParseError.self) { try XMLText.read(deep) }
        #expect(XMLText.parse(deep) == nil)
        let unclosed = String(repeating: "<a>", count: 200_000)
        #expect(throws: XMLText.ParseError.self) { try XMLText.read(unclosed) }
        let ok = String(repeating: "<a>", count: XMLText.maximumDepth) + String(repeating: "</a>", count: XMLText.maximumDepth)
        #expect((try? XMLText.read(ok))?.name == "a")
        let many = "<r>" + String(repeating: "<b/>", count: XMLText.maximumElements) + "</r>"
        #expect(throws: XMLText.ParseError.self) { try XMLText.read(many) }
    }

    static let envelope = #"xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="r""#

    static func ovf(capacity: String = "1048576", units: String = "byte", size: String? = nil, memory: String = "512",
                    memoryUnits: String = "byte * 2^20") -> String {
        """
        <Envelope \(envelope)>
          <References><File ovf:id="file1" ovf:href="x.vmdk"\(size.map { " ovf:size=\"\($0)\"" } ?? "")/></References>
          <DiskSection><Info>Disks</Info><Disk ovf:diskId="d1" ovf:fileRef="file1" ovf:capacity="\(capacity)" ovf:capacityAllocationUnits="\(units)"/></DiskSection>
          <VirtualSystem ovf:id="x"><Info>x</Info><Name>x</Name>
            <VirtualHardwareSection><Info>hw</Info>
              <Item><rasd:AllocationUnits>\(memoryUnits)</rasd:AllocationUnits><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>\(memory)</rasd:VirtualQuantity></Item>
            </VirtualHardwareSection>
          </VirtualSystem>
        </Envelope>

        """
    }

    /// Each descriptor, and what the one error line says of it.
    static let ovfCases: [(name: String, text: String, says: String)] = [
        ("capacity Int.max GiB", ovf(capacity: "9223372036854775807", units: "byte * 2^30"), "the capacity of disk d1 is too large"),
        ("capacity 2^61 × 2^3", ovf(capacity: "2305843009213693952", units: "byte * 2^3"), "the capacity of disk d1 is too large"),
        ("capacity Int.max × 10^18", ovf(capacity: "9223372036854775807", units: "byte * 10^18"), "the capacity of disk d1 is too large"),
        ("capacity GigaBytes", ovf(capacity: "9007199254740993", units: "GigaBytes"), "the capacity of disk d1 is too large"),
        ("capacity 2^63", ovf(capacity: "9223372036854775808"), "the capacity of disk d1 '9223372036854775808' is not a whole number"),
        ("capacity negative", ovf(capacity: "-1"), "the capacity of disk d1 '-1' is not a whole number"),
        ("capacity 1e300", ovf(capacity: "1e300"), "the capacity of disk d1 '1e300' is not a whole number"),
        ("file size 2^64", ovf(size: "18446744073709551616"), "the size of x.vmdk '18446744073709551616' is not a whole number"),
        ("memory Int.max MiB", ovf(memory: "9223372036854775807"), "the memory size is too large"),
        ("memory 2^40 units", ovf(memory: "8388608", memoryUnits: "byte * 2^40"), "the memory size is too large"),
        ("memory negative", ovf(memory: "-512"), "the memory size '-512' is not a whole number"),
        ("200,000 nested elements", "<Envelope \(envelope)>" + String(repeating: "<x>", count: 200_000) + String(repeating: "</x>", count: 200_000) + "</Envelope>",
         "XML elements nested more than 64 deep"),
    ]

    /// `vmcreate -c x.ovf` and a bare boot of it: exit 1 (not a signal), one
    /// error line naming the descriptor, nothing left behind.
    @Test(arguments: 0..<ovfCases.count) func hostileOVFNumbersAreOneLineNamingTheFile(_ k: Int) throws {
        let (name, text, says) = Self.ovfCases[k]
        let cli = try CLI(Scratch())
        let ovf = try cli.scratch.write("x.ovf", text)
        try cli.scratch.write("x.vmdk", "")
        for (command, args) in [("vmcreate", ["-n", "-y", "-c", ovf, "vm"]), ("vmup", ["-n", "-y", ovf])] {
            let r = try cli.run(command, args)
            #expect(r.status == 1, "\(name): \(command) exited \(r.status)\(r.status > 128 ? " (a signal)" : "")\n\(r.err)")
            let errors = r.err.split(separator: "\n").filter { $0.contains("ERROR") }
            #expect(errors.count == 1 && errors[0].contains(ovf + ": ") && errors[0].contains(says), "\(name): \(command)\n\(r.err)")
        }
        #expect(!cli.scratch.exists("vm"))
    }

    /// A `.vmx` whose memsize times 2^20 does not fit 64 bits.
    @Test func aHostileVMXMemsizeIsOneLine() throws {
        let cli = try CLI(Scratch())
        let vmx = try cli.scratch.write("x.vmx", "displayName = \"x\"\nmemsize = \"1024\"\nnumvcpus = \"99999999999999999999\"\n")
        let r = try cli.run("vmcreate", ["-n", "-y", "-c", vmx, "vm"])
        #expect(r.status == 1, "exited \(r.status)\n\(r.err)")
        #expect(r.err.contains(vmx + ": numvcpus = \"99999999999999999999\": expected a positive number"), "\(r.err)")
        try cli.scratch.write("x.vmx", "displayName = \"x\"\nmemsize = \"9223372036854775807\"\n")
        let m = try cli.run("vmcreate", ["-n", "-y", "-c", vmx, "vm"])
        #expect(m.status == 1, "exited \(m.status)\n\(m.err)")
        #expect(m.err.contains(vmx + ": memsize = \"9223372036854775807\": expected a size in MB"), "\(m.err)")
    }

    // MARK: settings

    /// Sizes whose bytes do not fit 64 bits, in a VM's own settings: `vmup
    /// -n` (and `vminfo -L`, which reads the machine's) name the setting and
    /// exit 1. A size grows an existing disk; a createsize makes a missing one.
    @Test(arguments: ["vm_ram_size=9999999999999G", "vm_ram_size=99999999999999999999M", "vm_storage_hdd1_createsize=9999999999999T",
                      "vm_storage_hdd1_size=9999999999999T", "vm_storage_hdd1_size=99999999999999999999999999M", "vm_cpu_count=99999999999999999999"])
    func hostileSizesInSettingsAreOneLine(_ line: String) throws {
        let cli = try CLI(Scratch())
        let setting = String(line.prefix { $0 != "=" })
        let disk = line.hasPrefix("vm_storage_hdd1_size") ? "disk.raw" : "disk.qcow2"
        try cli.scratch.write("vm/vm.settings", "vm_name=vm\nvm_storage_hdd1_enable=yes\nvm_storage_hdd1_backend=\(disk)\n\(line)\n")
        try cli.scratch.write("vm/disk.raw", String(repeating: "\0", count: 1 << 20))
        let home = cli.scratch.url("vm")
        let machine = line.hasPrefix("vm_ram") || line.hasPrefix("vm_cpu")
        for (command, args) in [("vmup", ["-n", home])] + (machine ? [("vminfo", ["-L", home])] : []) {
            let r = try cli.run(command, args)
            #expect(r.status == 1, "\(line): \(command) exited \(r.status)\n\(r.err)")
            let errors = r.err.split(separator: "\n").filter { $0.contains("ERROR") }
            #expect(errors.count == 1 && errors[0].contains(setting), "\(line): \(command)\n\(r.err)")
        }
    }

    // MARK: image headers

    static func qcow2Header(backingOffset: UInt64 = 0, backingLength: UInt32 = 0, l1Offset: UInt64 = 0x30000) -> [UInt8] {
        func be(_ v: UInt64, _ n: Int) -> [UInt8] { (0..<n).reversed().map { UInt8(truncatingIfNeeded: v >> (UInt64($0) * 8)) } }
        var h = [0x51, 0x46, 0x49, 0xFB] + be(3, 4) + be(backingOffset, 8) + be(UInt64(backingLength), 4) + be(16, 4)
        h += be(1 << 30, 8) + be(0, 4) + be(1, 4) + be(l1Offset, 8) + be(0x10000, 8) + be(1, 4)
        h += be(0, 4) + be(0, 8) + be(0, 8) + be(0, 8) + be(0, 8) + be(4, 4) + be(104, 4)
        return h + [UInt8](repeating: 0, count: 512 - h.count)
    }

    /// Offsets past Int.max in a qcow2 header, a GPT table LBA past Int.max:
    /// `Int(_:)` and `*` trapped in the description and the firmware autodetect.
    @Test func hostileImageHeadersAreNotATrap() throws {
        let s = Scratch()
        let backing = s.url("backing.qcow2")
        FileManager.default.createFile(atPath: backing, contents: Data(Self.qcow2Header(backingOffset: .max, backingLength: 16)))
        #expect(DiskImageKind.describe(backing).hasPrefix("QEMU QCOW2 Image (v3), 1073741824 bytes"))
        #expect(!DiskImageKind.describe(backing).contains("backing file"))
        #expect(ImageFormat.qcow2Backing(backing) == nil)
        let l1 = s.url("l1.qcow2")
        FileManager.default.createFile(atPath: l1, contents: Data(Self.qcow2Header(l1Offset: .max)))
        #expect(BootFirmware.of(l1) == .none)
        // A protective MBR and a GPT header whose table starts at LBA 2^63 - 1.
        var disk = [UInt8](repeating: 0, count: 1 << 20)
        disk[446 + 4] = 0xEE
        disk[510] = 0x55
        disk[511] = 0xAA
        for (k, b) in "EFI PART".utf8.enumerated() { disk[512 + k] = b }
        for k in 0..<8 { disk[512 + 72 + k] = k == 7 ? 0x7F : 0xFF }
        disk[512 + 80] = 128
        disk[512 + 84] = 128
        let gpt = s.url("gpt.raw")
        FileManager.default.createFile(atPath: gpt, contents: Data(disk))
        #expect(BootFirmware.of(gpt) == .none)
    }

    // MARK: forwards

    /// Ports read from QMP's `info usernet` and passt's forwards file are
    /// 0 to 65535; a row with another number is not a forward.
    @Test func portsOutOfRangeAreNoForwards() {
        let usernet = """
            Hub -1 (nd1):
              Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ
              TCP[HOST_FORWARD]  12       127.0.0.1 99999999999999999999  10.0.2.15  22     0     0
              TCP[HOST_FORWARD]  13       127.0.0.1 70000  10.0.2.15    22     0     0
              TCP[HOST_FORWARD]  14       127.0.0.1 2222  10.0.2.15    -1     0     0
              TCP[HOST_FORWARD]  15       127.0.0.1 2223  10.0.2.15    22     0     0
            """
        #expect(LiveForward.parse(usernet: usernet).map(\.description) == ["tcp:127.0.0.1:2223->22"])
        #expect(LiveForward.parse("tcp:127.0.0.1:99999999999999999999->22", nic: "1") == nil)
        #expect(LiveForward.parse("tcp:127.0.0.1:2222->65536", nic: "1") == nil)
        #expect(LiveForward.parse("tcp:127.0.0.1:2222->22", nic: "1")?.hostPort == 2222)
    }

    // MARK: another user's process

    /// Any process named `qemu-system-*` is listed by `vmps -a`: another
    /// user can start one with hostile numbers on its command line. It is
    /// listed, not a trap.
    @Test(.requires("python3")) func aProcessWithHostileArgumentsIsListed() throws {
        guard let python = requireTool("python3") else { return }
        let cli = try CLI(Scratch())
        let stop = cli.scratch.url("stop")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        // argv[0] renamed: /proc/PID/cmdline reads like a QEMU's.
        p.arguments = ["-c", "import os, sys; os.execv(sys.executable, sys.argv[1:])", "qemu-system-x86_64", "-c",
                       "import os, time\nwhile not os.path.exists(\(String(reflecting: stop))): time.sleep(0.05)",
                       "-m", "1e300G", "-vnc", ":9223372036854775807", "-smp", "99999999999999999999", "-name", "hostile"]
        try p.run()
        defer {
            FileManager.default.createFile(atPath: stop, contents: nil)
            if !waitUntil(10, { !p.isRunning }) { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
        }
        let pid = p.processIdentifier
        try #require(waitUntil(10) { QemuProcess.read(pid: pid)?.argv.contains("-vnc") == true })
        let table = try cli.run("vmps", ["-a", "-o", "pndgvt"])
        #expect(table.status == 0, "exited \(table.status)\n\(table.err)")
        #expect(table.out.split(separator: "\n").contains { $0.hasPrefix("\(pid) ") && $0.contains("hostile") && $0.contains(" ? ") }, "\(table.out)")
        // Other tests' VMs are listed too, and may answer badly on purpose (status 1): no signal.
        let all = try cli.run("vmps", ["-a", "-j"])
        #expect(all.status == 0 || all.status == 1, "exited \(all.status)\n\(all.err)")
        #expect(((try? JSONSerialization.jsonObject(with: Data(all.out.utf8))) as? [[String: Any]])?.contains { $0["pid"] as? Int == Int(pid) } == true)
        let json = try cli.run("vmps", ["-j", "-p", "\(pid)"])
        #expect(json.status == 0, "exited \(json.status)\n\(json.err)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]], "\(json.out)")
        let row = try #require(rows.first { $0["pid"] as? Int == Int(pid) })
        #expect(row["ram_mb"] is NSNull && row["vcpus"] is NSNull && row["display"] as? String == "?", "\(row)")
        let q = try #require(QemuProcess.read(pid: pid))
        #expect(q.ramMB == nil && q.vcpus == nil && q.display == "?")
        for m in ["nan", "-5", "inf", "1e19", "99999999999999999999T"] {
            #expect(QemuProcess(pid: 1, uid: 0, argv: ["qemu-system-x86_64", "-m", m], vszKB: 0, cpuPercent: 0).ramMB == nil, "\(m)")
        }
    }
}
