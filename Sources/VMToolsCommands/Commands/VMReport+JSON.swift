import VMToolsCore
import VMToolsQEMU
import VMToolsLaunch

/// vminfo -j's object (vminfo(1)), rendered from the report alone, keys in
/// the order they always had.
extension VMReport {
    var json: JSON {
        .object([
            ("home", .string(vm.home)),
            ("name", .string(vm.name)),
            ("settings_file", .string(vm.settingsPath)),
            ("state", .object(stateJSON)),
            ("parent", .string(vm.parent)),
            ("ancestors", .array(vm.ancestors.map { .string($0) })),
            ("children", .array((children?.children ?? []).map { .string($0) })),
            ("missing_children", .array(missingChildren.map { .string($0) })),
            ("templates", .array(vm.templates.map { .string($0) })),
            ("modules", .object(modules.map { category, result in
                switch result {
                case let .success(list):
                    return (category.rawValue, .array(list.map { m in
                        .object([("name", .string(m.name)), ("file", .string(m.file)),
                                 ("ignored", .array(m.ignored.map { .object([("file", .string($0.path)), ("why", .string($0.why))]) }))])
                    }))
                case let .failure(e):
                    return (category.rawValue, .object([("error", .string(e.description))]))
                }
            })),
            ("config_files", .array(configFiles.map { .string($0) })),
            ("settings", .object(settingsJSON)),
            ("disks", .array(drives.map(\.json))),
            ("usb_devices", Self.factJSON(usb) { .array($0.map { .object([("setting", .string($0.setting)), ("device", .string($0.device)), ("node", .string($0.node))]) }) }),
            ("tpm", Self.factJSON(tpm) { .string($0.rawValue) }),
        ] + firmwareJSON + [("image", imageJSON), ("snapshots", snapshotsJSON)])
    }

    /// The catalog entry the VM was made from; null for none.
    var imageJSON: JSON {
        guard let image else { return .null }
        return .object([("name", .string(image.name)), ("url", .string(image.url)), ("digest", .string(image.digest))])
    }

    /// A fact's value, or an `error` object; null when not gathered.
    static func factJSON<T>(_ fact: Result<T, Failure>?, _ value: (T) -> JSON) -> JSON {
        switch fact {
        case nil: return .null
        case .success(let v)?: return value(v)
        case .failure(let f)?: return .object([("error", .string(f.message))])
        }
    }

    var stateJSON: [(String, JSON)] {
        var state: [(String, JSON)] = [("running", .bool(running != nil)), ("pid", running.map { .number(Double($0.process.pid)) } ?? .null)]
        guard let running else { return state }
        let p = running.process
        state += [("accelerator", .string(p.accelerator)), ("display", .string(running.display)), ("monitor", .string(running.monitor)),
                  ("user", .string(p.user)), ("memory_kb", .number(Double(p.vszKB))),
                  ("cpu_percent", .number((p.cpuPercent * 100).rounded() / 100)),
                  ("forwards", running.forwards.map { .array($0.map(\.json)) } ?? .null),
                  ("ssh", .string(running.ssh)),
                  ("guest_agent", .string(running.guestAgent.jsonName)), ("guest_addresses", running.guestAgent.addressesJSON)]
        if p.rates != nil { state.append(("live", LiveFigures.json(p, pidName: pidName))) }
        return state
    }

    /// Every setting with its value, where it comes from and what it overrides.
    var settingsJSON: [(String, JSON)] {
        func origin(_ p: Provenance) -> [(String, JSON)] {
            var o: [(String, JSON)] = [("source", .string(p.layer))]
            switch p {
            case let .config(_, path, line), let .vmFile(path, line, _):
                o += [("file", .string(path)), ("line", .number(Double(line)))]
            case let .template(name, path, line):
                o += [("template", .string(name)), ("file", .string(path)), ("line", .number(Double(line)))]
            case let .commandLine(flag): o.append(("option", .string(flag)))
            case .builtin, .derived: break
            }
            return o
        }
        return vm.settings.names.compactMap { name in
            guard let e = vm.settings.entries[name] else { return nil }
            var fields: [(String, JSON)] = [("value", .string(e.value))] + origin(e.provenance)
            if !e.overridden.isEmpty {
                fields.append(("overrides", .array(e.overridden.map { .object([("value", .string($0.value))] + origin($0.provenance)) })))
            }
            return (name, .object(fields))
        }
    }

    /// `firmware`, `firmware_code` and `firmware_vars`.
    var firmwareJSON: [(String, JSON)] {
        switch firmware?.value {
        case nil: return []
        case .failure(let e)?: return [("firmware", .object([("error", .string(e.description))])), ("firmware_code", .null), ("firmware_vars", .null)]
        case .success(let value)?: return [("firmware", .string(value.rawValue)), ("firmware_code", .string(firmware?.code)), ("firmware_vars", .string(firmware?.vars))]
        }
    }
}

extension VMReport.Drive {
    var json: JSON {
        var fields: [(String, JSON)] = [("slot", .string(name)), ("backend", .string(backend)), ("mode", .string(mode)), ("remote", .bool(remote))]
        if let image {
            fields += [("path", .string(image.path)), ("exists", .bool(image.exists)),
                       ("description", .string(image.description)),
                       ("data_files", .array(image.files.dataFiles.map { .object([("path", .string($0.path)), ("in_tree", .bool($0.inTree))]) })),
                       ("outside_backing_files", .array(image.files.outsideBacking.map { .string($0) }))]
            switch image.json {
            case .success(let info)?: fields.append(("image", info))
            case .failure(let e)?: fields.append(("image_error", .string(e.description)))
            case nil: break
            }
        }
        return .object(fields)
    }
}
