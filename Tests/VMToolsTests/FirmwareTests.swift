import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

/// `vm_firmware` (vm.settings(5), FIRMWARE) without booting: which
/// descriptor is chosen, the QEMU arguments of each firmware, the variable
/// store the plan makes, and the errors. The descriptors are fakes in the
/// scratch directory (`VMTOOLS_TEST_FIRMWARE_DIR`), so the host's ovmf does
/// not matter.
@Suite struct FirmwareTests {
    let build = BuildCmdTests()

    /// A descriptor in QEMU's firmware.json format, and fake images.
    @discardableResult
    func descriptor(_ s: Scratch, _ dir: String, _ name: String, code: String, vars: String, features: [String],
                    machines: [String] = ["pc-i440fx-*", "pc-q35-*"], arch: String = "x86_64") throws -> String {
        try s.writeBytes("images/\(code)", [UInt8](repeating: 0xff, count: 4096))
        try s.writeBytes("images/\(vars)", [UInt8](repeating: 0, count: 4096))
        let quoted = { (a: [String]) in a.map { "\"\($0)\"" }.joined(separator: ", ") }
        return try s.write("\(dir)/\(name)", """
        {
            "description": "\(name)",
            "interface-types": ["uefi"],
            "mapping": {
                "device": "flash",
                "executable": {"filename": "\(s.url("images/\(code)"))", "format": "raw"},
                "nvram-template": {"filename": "\(s.url("images/\(vars)"))", "format": "raw"}
            },
            "targets": [{"architecture": "\(arch)", "machines": [\(quoted(machines))]}],
            "features": [\(quoted(features))],
            "tags": []
        }
        """)
    }

    /// The three descriptors Debian's ovmf ships, in the same order.
    func debianLike(_ s: Scratch, _ dir: String = "fw") throws -> [String: String] {
        try descriptor(s, dir, "40-secure-enrolled.json", code: "CODE,ms.fd", vars: "VARS,ms.fd",
                       features: ["acpi-s3", "enrolled-keys", "requires-smm", "secure-boot"], machines: ["pc-q35-*"])
        try descriptor(s, dir, "50-secure.json", code: "CODE.secboot.fd", vars: "VARS.fd",
                       features: ["acpi-s3", "requires-smm", "secure-boot"], machines: ["pc-q35-*"])
        try descriptor(s, dir, "60-plain.json", code: "CODE.fd", vars: "VARS.fd", features: ["acpi-s3"])
        return ["VMTOOLS_TEST_FIRMWARE_DIR": s.url(dir)]
    }

    func home(_ s: Scratch) throws -> String {
        try s.mkdir("a,vm")
        return s.url("a,vm")
    }

    @Test func biosAddsNothing() throws {
        let s = Scratch()
        let env = try debianLike(s)
        let h = try home(s)
        let plain = try build.command(s, ["vm_name": "a"], home: h, environment: env)
        let bios = try build.command(s, ["vm_name": "a", "vm_firmware": "bios"], home: h, environment: env)
        #expect(bios.argv == plain.argv)
        #expect(!bios.argv.contains("-machine") && !bios.argv.contains { $0.contains("pflash") })
        #expect(bios.plan.firmwareStore == nil)
    }

    @Test func uefiTakesThePlainFirmwareAndPlansTheStore() throws {
        let s = Scratch()
        let env = try debianLike(s)
        let h = try home(s)
        let c = try build.command(s, ["vm_name": "a", "vm_firmware": "uefi"], home: h, environment: env)
        let i = try #require(c.argv.firstIndex(of: "-blockdev"))
        #expect(Array(c.argv[i..<i + 6]) == [
            "-blockdev", "driver=raw,node-name=firmware-uefi,read-only=on,file.driver=file,file.filename=\(s.url("images/CODE.fd")),file.read-only=on",
            "-blockdev", "driver=qcow2,node-name=firmware-vars,file.driver=file,file.filename=\(s.url("a,,vm/firmware-vars.qcow2"))",
            "-machine", "pflash0=firmware-uefi,pflash1=firmware-vars",
        ])
        #expect(!c.argv.contains("-global"))
        #expect(c.plan.firmwareStore == .init(path: h + "/firmware-vars.qcow2", template: s.url("images/VARS.fd"), templateFormat: "raw"))
        #expect(c.plan.dryRunLines.contains("would create \(h)/firmware-vars.qcow2 (UEFI variables from \(s.url("images/VARS.fd")))"))
        // A store made on an earlier start is used, never made again.
        try s.writeBytes("a,vm/firmware-vars.qcow2", [0x51, 0x46, 0x49, 0xFB])
        let again = try build.command(s, ["vm_name": "a", "vm_firmware": "uefi"], home: h, environment: env)
        #expect(again.plan.firmwareStore == nil)
        #expect(again.argv == c.argv)
        // Plain OVMF needs no SMM: an i440FX named in vm_qemu_params (legacy_pc) stays.
        let pc = try build.command(s, ["vm_name": "a", "vm_firmware": "uefi", "vm_qemu_params": "-machine pc"], home: h, environment: env)
        #expect(Array(pc.argv.suffix(from: try #require(pc.argv.firstIndex(of: "-blockdev")) + 4).prefix(2)) == ["-machine", "pflash0=firmware-uefi,pflash1=firmware-vars"])
    }

    @Test func uefiSecureTakesTheEnrolledFirmwareWithSMM() throws {
        let s = Scratch()
        let env = try debianLike(s)
        let h = try home(s)
        let c = try build.command(s, ["vm_name": "a", "vm_firmware": "uefi-secure"], home: h, environment: env)
        let i = try #require(c.argv.firstIndex(of: "-blockdev"))
        #expect(Array(c.argv[i..<i + 8]) == [
            "-blockdev", "driver=raw,node-name=firmware-uefi-secure,read-only=on,file.driver=file,file.filename=\(s.url("images/CODE,,ms.fd")),file.read-only=on",
            "-blockdev", "driver=qcow2,node-name=firmware-vars,file.driver=file,file.filename=\(s.url("a,,vm/firmware-vars.qcow2"))",
            "-machine", "q35,smm=on,pflash0=firmware-uefi-secure,pflash1=firmware-vars",
            "-global", "driver=cfi.pflash01,property=secure,value=on",
        ])
        #expect(c.plan.firmwareStore?.template == s.url("images/VARS,ms.fd"))
        #expect(!c.notices.contains { $0.contains("vm_boot_kernel") })

        // A q35 named in vm_qemu_params is kept (QEMU merges -machine options); another machine is refused.
        let q35 = try build.command(s, ["vm_name": "a", "vm_firmware": "uefi-secure", "vm_qemu_params": "-machine pc-q35-7.2,accel=tcg"],
                                    home: h, environment: env)
        #expect(q35.argv.contains("smm=on,pflash0=firmware-uefi-secure,pflash1=firmware-vars"))
        let e = expectError { _ = try build.command(s, ["vm_name": "a", "vm_firmware": "uefi-secure", "vm_qemu_params": "-M pc"], home: h, environment: env) }
        #expect(e?.description.hasPrefix("vm_qemu_params: '-M pc'") == true, "\(String(describing: e))")
        #expect(e?.message.contains("needs q35 with SMM") == true)
    }

    @Test func uefiSecureWithADirectKernelSaysItIsNotVerified() throws {
        let s = Scratch()
        let env = try debianLike(s)
        let h = try home(s)
        try s.write("a,vm/vmlinuz", "kernel")
        let c = try build.command(s, ["vm_name": "a", "vm_firmware": "uefi-secure", "vm_boot_kernel": h + "/vmlinuz"], home: h, environment: env)
        #expect(c.notices.contains("vm_firmware=uefi-secure: OVMF starts a direct kernel boot (vm_boot_kernel) without checking its signature; Secure Boot guards only what the firmware loads from disk"))
        let plain = try build.command(s, ["vm_name": "a", "vm_firmware": "uefi", "vm_boot_kernel": h + "/vmlinuz"], home: h, environment: env)
        #expect(!plain.notices.contains { $0.contains("vm_boot_kernel") })
    }

    @Test func aBareBootKeepsItsStoreInItsRunDirectory() throws {
        let s = Scratch()
        let env = try debianLike(s)
        try s.mkdir("run")
        let c = try build.command(s, ["vm_name": "x.iso", "vm_firmware": "uefi"], runDirectory: s.url("run"), environment: env)
        #expect(c.plan.firmwareStore?.path == s.url("run/firmware-vars.qcow2"))
    }

    /// QEMU's rules: by file name, a later directory replaces a file of the
    /// same name, an empty file masks it; descriptors for another
    /// architecture, another interface or with missing images are passed over.
    @Test func descriptorsFollowQEMUsPrecedence() throws {
        let s = Scratch()
        _ = try debianLike(s, "low")
        try descriptor(s, "high", "60-plain.json", code: "MINE.fd", vars: "MYVARS.fd", features: [])
        try s.write("high/40-secure-enrolled.json", "")
        try descriptor(s, "high", "10-arm.json", code: "ARM.fd", vars: "ARMVARS.fd", features: [], arch: "aarch64")
        try s.write("high/20-bios.json", #"{"interface-types": ["bios"], "mapping": {"device": "memory", "filename": "/x"}, "targets": [{"architecture": "x86_64"}]}"#)
        try s.write("high/30-broken.json", "{ not json")
        let missing = try descriptor(s, "high", "35-missing.json", code: "GONE.fd", vars: "GONEVARS.fd", features: [])
        try FileManager.default.removeItem(atPath: s.url("images/GONE.fd"))
        _ = missing
        let env = ["VMTOOLS_TEST_FIRMWARE_DIR": s.url("low") + ":" + s.url("high")]
        #expect(FirmwareDescriptor.choose(.uefi, architecture: "x86_64", environment: env)?.code == s.url("images/MINE.fd"))
        #expect(FirmwareDescriptor.choose(.uefiSecure, architecture: "x86_64", environment: env) == nil)
        #expect(FirmwareDescriptor.choose(.uefi, architecture: "aarch64", environment: env)?.code == s.url("images/ARM.fd"))
        #expect(FirmwareDescriptor.choose(.bios, architecture: "x86_64", environment: env) == nil)
        // Without the test variable: the three directories of the spec, the user's last.
        #expect(FirmwareDescriptor.directories(environment: ["XDG_CONFIG_HOME": "/x", "HOME": "/h"])
                == ["/usr/share/qemu/firmware", "/etc/qemu/firmware", "/x/qemu/firmware"])
        #expect(FirmwareDescriptor.directories(environment: ["HOME": "/h"]).last == "/h/.config/qemu/firmware")
    }

    @Test func onlySecureDescriptorsLeaveUEFIWithoutEnrolledKeys() throws {
        let s = Scratch()
        try descriptor(s, "fw", "40-secure-enrolled.json", code: "E.fd", vars: "EV.fd", features: ["enrolled-keys", "requires-smm", "secure-boot"])
        let env = ["VMTOOLS_TEST_FIRMWARE_DIR": s.url("fw")]
        // Enrolled keys would enforce Secure Boot: plain uefi never takes them.
        #expect(FirmwareDescriptor.choose(.uefi, architecture: "x86_64", environment: env) == nil)
        try descriptor(s, "fw", "50-secure.json", code: "S.fd", vars: "SV.fd", features: ["requires-smm", "secure-boot"])
        #expect(FirmwareDescriptor.choose(.uefi, architecture: "x86_64", environment: env)?.code == s.url("images/S.fd"))
    }

    @Test func errorsNameTheSettingAndThePackage() throws {
        let s = Scratch()
        try s.mkdir("nofw")
        let cli = try CLI(s)
        try s.write("vm/vm.settings", "vm_name=vm\nvm_firmware=uefi\n")
        let none = try cli.run("vmup", ["-n", "--", s.url("vm")], env: ["VMTOOLS_TEST_FIRMWARE_DIR": s.url("nofw")])
        #expect(none.status == 1)
        let line = "vmup: ERROR: vm_firmware: 'uefi' (from \(s.url("vm/vm.settings")):2): no firmware descriptor in \(s.url("nofw")) describes UEFI firmware (Debian: apt-get install ovmf)\n"
        #expect(none.err.hasSuffix(line), "\(none.err)")
        #expect(!s.exists("vm/firmware-vars.qcow2"))

        try s.write("vm/vm.settings", "vm_name=vm\nvm_firmware=efi\n")
        let bad = try cli.run("vmup", ["-n", "--", s.url("vm")], env: ["VMTOOLS_TEST_FIRMWARE_DIR": s.url("nofw")])
        #expect(bad.status == 1)
        #expect(bad.err.contains("vm_firmware: 'efi' (from \(s.url("vm/vm.settings")):2): expected bios, uefi or uefi-secure"), "\(bad.err)")
    }

    /// The executor makes the store from the template as qcow2 (temp file,
    /// rename), and takes it away again when the start fails.
    @Test(.requires("qemu-img")) func theExecutorMakesTheStoreAndRollsItBack() throws {
        let s = Scratch()
        let env = try debianLike(s)
        let h = try home(s)
        let c = try build.command(s, ["vm_name": "a", "vm_firmware": "uefi"], home: h, environment: env)
        var x = try build.executor(s, c)
        try x.prepare()
        let store = h + "/firmware-vars.qcow2"
        let bytes = try #require(FileManager.default.contents(atPath: store))
        #expect(Array(bytes.prefix(4)) == [0x51, 0x46, 0x49, 0xFB], "qcow2")
        #expect(try FileManager.default.contentsOfDirectory(atPath: h) == ["firmware-vars.qcow2"], "no temporary file left")
        #expect(x.createdFiles == [store])
        let info = try QemuImg.info(store, backingChain: false, environment: ["PATH": "/usr/bin:/bin"])
        #expect(info["virtual-size"]?.numberValue == 4096)
        x.rollback()
        #expect(!FileManager.default.fileExists(atPath: store))
    }

    @Test func vminfoShowsTheFirmwareAndItsStore() throws {
        let s = Scratch()
        let env = try debianLike(s)
        let cli = try CLI(s)
        try s.write("vm/vm.settings", "vm_name=vm\nvm_firmware=uefi-secure\n")
        let before = try cli.run("vminfo", ["-i", s.url("vm")], env: env)
        #expect(before.status == 0, "\(before.err)")
        #expect(before.outLines.contains("Firmware: uefi-secure (CODE,ms.fd, variables made on the first start)"), "\(before.out)")
        try s.writeBytes("vm/firmware-vars.qcow2", [0x51, 0x46, 0x49, 0xFB])
        #expect(try cli.run("vminfo", ["-i", s.url("vm")], env: env).outLines.contains("Firmware: uefi-secure (CODE,ms.fd, variables firmware-vars.qcow2)"))
        let json = try cli.run("vminfo", ["-j", s.url("vm")], env: env)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]])
        #expect(doc.first?["firmware"] as? String == "uefi-secure")
        #expect(doc.first?["firmware_code"] as? String == s.url("images/CODE,ms.fd"))
        #expect(doc.first?["firmware_vars"] as? String == s.url("vm/firmware-vars.qcow2"))
        let none = try cli.run("vminfo", ["-i", s.url("vm")], env: ["VMTOOLS_TEST_FIRMWARE_DIR": s.url("nothing")])
        #expect(none.outLines.contains("Firmware: uefi-secure (no firmware descriptor fits; Debian: apt-get install ovmf)"), "\(none.out)")

        // BIOS: no line, as before UEFI existed.
        try s.write("vm/vm.settings", "vm_name=vm\n")
        let bios = try cli.run("vminfo", ["-i", s.url("vm")], env: env)
        #expect(!bios.out.contains("Firmware"))
        let biosJSON = try cli.run("vminfo", ["-j", s.url("vm")], env: env)
        let biosDoc = try #require(try JSONSerialization.jsonObject(with: Data(biosJSON.out.utf8)) as? [[String: Any]])
        #expect(biosDoc.first?["firmware"] as? String == "bios")
        #expect(biosDoc.first?["firmware_code"] is NSNull)
    }

    /// vmps reads the firmware back from QEMU's command line.
    @Test func theFirmwareOfARunningQEMUComesFromItsArgv() throws {
        let s = Scratch()
        let env = try debianLike(s)
        let h = try home(s)
        for value in ["uefi", "uefi-secure"] {
            let c = try build.command(s, ["vm_name": "a", "vm_firmware": value], home: h, environment: env)
            #expect(FirmwareModule.firmware(argv: c.argv) == value)
        }
        #expect(FirmwareModule.firmware(argv: try build.command(s, ["vm_name": "a"], home: h, environment: env).argv) == "bios")
        #expect(FirmwareModule.firmware(argv: ["qemu", "-bios", "/x/OVMF.fd"]) == "other")
        #expect(FirmwareModule.firmware(argv: ["qemu", "-machine", "q35,pflash0=mine"]) == "other")
    }
}
