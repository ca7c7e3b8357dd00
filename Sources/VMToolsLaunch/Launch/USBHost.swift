import VMToolsCore

#if canImport(Glibc)
import Glibc
#endif

/// The host's USB devices as sysfs lists them (`/sys/bus/usb/devices`) and
/// their nodes (`/dev/bus/usb/BBB/DDD`). `VMTOOLS_TEST_SYS_ROOT` and
/// `VMTOOLS_TEST_DEV_ROOT` replace `/sys` and `/dev`: a test hook, so tests
/// can fake a device tree (vm.settings(5), `vm_usbN_device`).
package struct USBHost {
    var sys = "/sys"
    var dev = "/dev"

    package init(environment: [String: String]) {
        if let s = environment["VMTOOLS_TEST_SYS_ROOT"], !s.isEmpty { sys = s }
        if let d = environment["VMTOOLS_TEST_DEV_ROOT"], !d.isEmpty { dev = d }
    }

    package struct Found: Equatable {
        var vendor: String
        var product: String
        package var node: String
    }

    /// The plugged device `device` names, or nil.
    package func find(_ device: USBDevice) -> Found? {
        let root = sys + "/bus/usb/devices"
        let names: [String]
        switch device {
        case .id: names = ((try? FileSystem.listDirectory(root)) ?? []).filter { !$0.contains(":") }.sorted(by: bytewiseLess)
        case .port(let bus, let port): names = ["\(bus)-\(port)"]
        }
        for name in names {
            let dir = root + "/" + name
            func attribute(_ a: String) -> String? {
                guard let text = (try? FileSystem.readTextIfExists(dir + "/" + a, limit: 64)) ?? nil else { return nil }
                return String(text.prefix { !$0.isWhitespace })
            }
            guard let vendor = attribute("idVendor"), let product = attribute("idProduct"),
                  let bus = attribute("busnum").flatMap({ Int($0) }), let num = attribute("devnum").flatMap({ Int($0) }) else { continue }
            if case .id(let v, let p) = device, v != vendor.lowercased() || p != product.lowercased() { continue }
            return Found(vendor: vendor, product: product, node: dev + "/bus/usb/" + Self.threeDigits(bus) + "/" + Self.threeDigits(num))
        }
        return nil
    }

    static func threeDigits(_ n: Int) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, 3 - s.count)) + s
    }

    /// Nil when the node opens read-write, else why not.
    static func openError(_ node: String) -> String? {
        let fd = open(node, O_RDWR | O_NONBLOCK | O_CLOEXEC)
        guard fd < 0 else {
            close(fd)
            return nil
        }
        return FileSystem.errnoMessage()
    }

    /// The udev rule that lets the user at the seat open the device.
    static func udevRule(vendor: String, product: String) -> String {
        "SUBSYSTEM==\"usb\", ATTR{idVendor}==\"\(vendor)\", ATTR{idProduct}==\"\(product)\", MODE=\"0660\", TAG+=\"uaccess\""
    }
}

extension USBHost {
    /// Right before QEMU starts: each host USB device's node must open
    /// read-write for us; otherwise the error names the node and the udev
    /// rule that grants access, vmtools never asks for root. One not
    /// plugged in is waited for by QEMU.
    static func check(_ checks: [LaunchPlan.USBCheck], vmName: String, console: Console, environment: [String: String]) throws {
        let host = USBHost(environment: environment)
        for check in checks {
            guard let found = host.find(check.device) else {
                console.notice("\(vmName): \(check.setting) \(check.device.description) is not plugged in: QEMU attaches it when it is")
                continue
            }
            guard let why = USBHost.openError(found.node) else { continue }
            let rule = USBHost.udevRule(vendor: found.vendor, product: found.product)
            throw VMToolsError(.failure, found.node, "\(check.setting) \(check.device.description): cannot open read-write (\(why)); "
                + "a udev rule grants access, e.g. in /etc/udev/rules.d/70-vmtools-usb.rules: \(rule) (then replug the device)")
        }
    }
}
