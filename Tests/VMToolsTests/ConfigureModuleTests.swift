import Foundation
import Testing
@testable import VMToolsCore
@testable import VMToolsQEMU
@testable import VMToolsLaunch
@testable import VMToolsCommands

@Suite struct ConfigureModuleTests {
    func configuration(_ s: Scratch, answers: [String], home: String? = nil) throws -> Configuration {
        let g = try resolver(s).loadGlobal()
        var lines = answers
        let errFd = open("/dev/null", O_WRONLY)
        let console = Console(command: "test", out: OutputStream(fd: errFd), err: OutputStream(fd: errFd))
        let prompter = Prompter(assumeYes: false, console: console, interactive: true) {
            lines.isEmpty ? nil : lines.removeFirst()
        }
        return Configuration(settings: g.settings, templates: [], home: home, global: g, environment: [:], prompter: prompter, console: console)
    }

    @Test func asksForCPUsAndRAMAndRecordsTheAnswers() throws {
        let s = Scratch()
        var c = try configuration(s, answers: ["?", "0", "4", "x", "3", "m"])
        try CpuCountModule.configure(&c)
        try RamSizeModule.configure(&c)
        #expect(c.recorded == [.init("vm_cpu_count", "4"), .init("vm_ram_size", "3M")])
        #expect(c.value("vm_ram_size") == "3M")
    }

    @Test func defaultsAreNotRecordedAndTheCommandLineWins() throws {
        let s = Scratch()
        var c = try configuration(s, answers: ["", "8", ""])
        c.recorded.append(.init("vm_ram_size", "1G"))
        try CpuCountModule.configure(&c)
        try RamSizeModule.configure(&c)
        #expect(c.recorded == [.init("vm_ram_size", "1G")])
        var eof = try configuration(s, answers: [])
        #expect(expectError { try CpuCountModule.configure(&eof) }?.message.contains("end of input") == true)
    }

    @Test func aNewVMGetsANICWithAFixedMACAndAFirstDisk() throws {
        let s = Scratch()
        try s.mkdir("vm")
        var c = try configuration(s, answers: ["20", ""], home: s.url("vm"))
        try NetworkingAutoModule.configure(&c)
        try StorageHdd1CreateSizeModule.configure(&c)
        // "20" is a bare number: the unit question's default is G.
        #expect(c.value("vm_storage_hdd1_createsize") == "20G")
        #expect(c.recorded.map(\.name) == ["vm_networking_iface1_enable", "vm_networking_iface1_mac", "vm_storage_hdd1_backend", "vm_storage_hdd1_enable"])
        #expect(c.recorded[1].value.hasPrefix("52:54:00:") && c.recorded[1].value.count == 17)
        #expect(c.recorded[2].value == s.url("vm/hdd.qcow2"))
        var none = try configuration(s, answers: ["0"], home: s.url("vm"))
        try StorageHdd1CreateSizeModule.configure(&none)
        #expect(none.recorded.isEmpty)
    }

    /// A cloud image gets a virtio disk bus and NIC (its kernel may have no
    /// e1000 driver); what the user chose, anywhere but the shipped defaults, stays.
    @Test func aCloudImageGetsVirtioUnlessTheUserChoseOtherwise() throws {
        let s = Scratch()
        func run(_ backend: String, _ extra: [(String, String, Provenance)] = []) throws -> Configuration {
            var c = try configuration(s, answers: [])
            c.settings.set("vm_storage_hdd1_enable", "yes", .commandLine("-c"))
            c.settings.set("vm_storage_hdd1_backend", backend, .commandLine("-c"))
            for (name, value, provenance) in extra { c.settings.set(name, value, provenance) }
            try NetworkingAutoModule.configure(&c)
            try CloudImageModule.configure(&c)
            return c
        }
        let cloud = try run("/img/debian-12-genericcloud-amd64.qcow2")
        #expect(cloud.value("vm_storage_hdd_interface") == "virtio" && cloud.value("vm_networking_iface1_device") == "virtio-net-pci")
        #expect(cloud.recorded.contains(.init("vm_storage_hdd_interface", "virtio")) && cloud.recorded.contains(.init("vm_networking_iface1_device", "virtio-net-pci")))
        // Anything else keeps the legacy defaults.
        let legacy = try run("/img/win98.qcow2")
        #expect(legacy.value("vm_storage_hdd_interface") == "ide" && legacy.value("vm_networking_iface1_device").isEmpty)
        #expect(!legacy.recorded.contains { $0.name == "vm_storage_hdd_interface" || $0.name == "vm_networking_iface1_device" })
        // A template or the user's vmtools.conf chose: kept.
        let chosen = try run("/img/jammy-server-cloudimg-amd64.img", [
            ("vm_storage_hdd_interface", "ide", .template(name: "old", path: "/t/old", line: 1)),
            ("vm_networking_default_device", "e1000", .config(layer: .user, path: "/u/vmtools.conf", line: 1)),
        ])
        #expect(chosen.value("vm_storage_hdd_interface") == "ide" && chosen.value("vm_networking_iface1_device").isEmpty)
        // So did the command line, for the NIC itself.
        var explicit = try configuration(s, answers: [])
        explicit.settings.set("vm_storage_hdd1_enable", "yes", .commandLine("-c"))
        explicit.settings.set("vm_storage_hdd1_backend", "Rocky-9-GenericCloud.qcow2", .commandLine("-c"))
        explicit.recorded.append(.init("vm_networking_iface1_device", "e1000"))
        explicit.settings.set("vm_networking_iface1_enable", "yes", .commandLine("-o"))
        explicit.settings.set("vm_networking_iface1_device", "e1000", .commandLine("-o"))
        try CloudImageModule.configure(&explicit)
        #expect(explicit.value("vm_networking_iface1_device") == "e1000" && explicit.value("vm_storage_hdd_interface") == "virtio")
    }
}
