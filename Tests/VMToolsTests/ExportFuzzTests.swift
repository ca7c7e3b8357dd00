import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsLaunch

/// The XML vmtools writes (`vminfo -L`'s libvirt domain, `vmcp -a`'s OVF
/// descriptor) is well-formed for any settings value (issue 22): random
/// values built from what breaks XML (`--` and `-` in comments, `]]>`,
/// controls, U+FFFE, quotes, `&`) go through every export, then through an
/// XML parser (Python's expat) and, for libvirt, `virsh define --validate`.
/// `VMTOOLS_TEST_SEED` replays another seed.
@Suite struct ExportFuzzTests {
    static let pieces = [
        "--", "-", "---", "]]>", "<!--", "-->", "&", "&amp;", "&#0;", "<", ">", "'", "\"", "\u{0}", "\u{1}", "\u{8}", "\u{B}", "\u{1B}",
        "\u{7F}", "\u{85}", "\u{9B}", "\u{FFFD}", "\u{E000}", "\t", "\r", "\n",
        "é", "日本", "😀", "a", "z9", " ", "/", "%", "\\", "${x}", "<![CDATA[", "?>", "x=y,", "]]",
    ] + [0xFFFE, 0xFFFF, 0xFDD0, 0x10FFFF, 0x1FFFE].compactMap { Unicode.Scalar($0).map { String($0) } }
    static let iterations = 40

    static var seed: UInt64 { ProcessInfo.processInfo.environment["VMTOOLS_TEST_SEED"].flatMap { UInt64($0) } ?? 22 }

    static func value(_ rng: inout FaultInjectionTests.SeededGenerator) -> String {
        (0..<Int.random(in: 1...8, using: &rng)).map { _ in pieces.randomElement(using: &rng) ?? "-" }.joined()
    }

    /// The files Python's XML parser (expat) refuses, with why.
    static func illFormed(_ files: [String]) throws -> [String] {
        let script = """
            import sys, xml.dom.minidom
            for f in sys.argv[1:]:
                try:
                    xml.dom.minidom.parse(f)
                except Exception as e:
                    print(f + ": " + str(e))
            """
        let r = try Subprocess("/usr/bin/python3", ["-c", script] + files).run()
        #expect(r.status == 0, "\(r.stderrText)")
        return r.stdoutText.split(separator: "\n").map(String.init)
    }

    @Test func commentsAndTextAreWellFormedForAnyInput() {
        let fffe = String(Unicode.Scalar(0xFFFE as UInt32)!), ffff = String(Unicode.Scalar(0xFFFF as UInt32)!)
        for s in ["---", "a--b", "-", "a-", "--->", fffe + ffff + "\u{1}", "x\ny\r"] {
            let c = XMLText.comment(s)
            #expect(!c.contains("--") && !c.hasSuffix("-") && !c.contains("\n"), "\(s) → \(c)")
            #expect(c.unicodeScalars.allSatisfy(XMLText.isXMLChar))
        }
        #expect(XMLText.escape("a" + fffe + "b\u{1}c" + ffff) == "a\u{FFFD}b\u{FFFD}c\u{FFFD}")
        #expect(XMLText.escape("]]>\r", attribute: true) == "]]&gt;&#13;")
        #expect(XMLText.escape("é\u{85}\u{10FFFF}") == "é\u{85}\u{10FFFF}")
    }

    @Test(.requires("python3", "virsh")) func everyLibvirtExportParsesAndValidates() throws {
        guard requireTool("python3") != nil, let virsh = requireTool("virsh") else { return }
        let s = Scratch()
        try s.write("vm/vm.settings", "vm_display_type=vnc\n")
        let global = try resolver(s).loadGlobal()
        let loaded = try resolver(s).loadVM(home: s.url("vm"), global: global)
        var rng = FaultInjectionTests.SeededGenerator(seed: Self.seed)
        var files: [String] = []
        var values: [String: [String: String]] = [:]
        for i in 0..<Self.iterations {
            var vm = loaded
            let password = try s.write("pw\(i)", Self.value(&rng).replacingAll("\n", with: "n"))
            let settings = [
                "vm_name": Self.value(&rng),
                "vm_networking_iface1_enable": "yes", "vm_networking_iface1_mode": "socket," + Self.value(&rng),
                "vm_networking_iface2_enable": "yes", "vm_networking_iface2_mode": "user," + Self.value(&rng),
                "vm_storage_hdd1_enable": "yes", "vm_storage_hdd1_backend": "nbd:" + Self.value(&rng),
                "vm_storage_cdrom1_enable": "yes", "vm_storage_cdrom1_backend": "http://h/" + Self.value(&rng),
                "vm_qemu_params": ExtendedString.encode(Self.value(&rng)), "vm_macos_osk": Self.value(&rng),
                "vm_display_password": password,
            ]
            for (k, v) in settings { vm.settings.set(k, v, .commandLine("-o")) }
            values["domain\(i).xml"] = settings
            do {
                let domain = try LibvirtDomain(vm, accelerator: .tcg, global: global, environment: [:])
                files.append(try s.write("domain\(i).xml", domain.xml))
            } catch let e as VMToolsError {
                Issue.record("seed \(Self.seed), \(settings): the export failed: \(e.description)")
            }
        }
        #expect(files.count == Self.iterations)
        for bad in try Self.illFormed(files) { Issue.record("seed \(Self.seed): \(bad) \(values[bad.lastPathComponent.prefix { $0 != ":" }.description] ?? [:])") }
        for f in files {
            let r = try Subprocess(virsh, ["-q", "-c", "test:///default", "define", "--validate", f]).run()
            #expect(r.status == 0, "seed \(Self.seed), \(values[f.lastPathComponent] ?? [:]): \(r.stderrText)")
        }
    }

    @Test(.requires("python3")) func everyOVFDescriptorParses() throws {
        guard requireTool("python3") != nil else { return }
        let s = Scratch()
        var rng = FaultInjectionTests.SeededGenerator(seed: Self.seed &+ 1)
        var files: [String] = []
        for i in 0..<Self.iterations {
            let name = Self.value(&rng)
            var d = OVFDescriptor(name: name)
            d.cpus = 1
            d.memoryMB = 128
            d.disks = [.init(file: Self.value(&rng) + ".vmdk", capacity: 1 << 20)]
            d.nics = ["E1000"]
            d.macs = [0: Self.value(&rng)]
            files.append(try s.write("ovf\(i).ovf", d.render()))
            // Our own reader gets the name back (it trims blanks), minus what XML cannot carry.
            let parsed = XMLText.parse(d.render())?.first("VirtualSystem")?.first("Name")?.text
            let expected = String(String.UnicodeScalarView(name.unicodeScalars.map { XMLText.isXMLChar($0) ? $0 : "\u{FFFD}" }))
            #expect(parsed?.trimmingCharacters(in: .whitespacesAndNewlines) == expected.trimmingCharacters(in: .whitespacesAndNewlines),
                    "seed \(Self.seed &+ 1): \(name.debugDescription)")
        }
        let bad = try Self.illFormed(files)
        #expect(bad.isEmpty, "seed \(Self.seed &+ 1): \(bad)")
    }
}
