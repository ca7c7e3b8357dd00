import VMToolsCore
import VMToolsLaunch

#if canImport(Glibc)
import Glibc
#endif

/// `vmimage`: the image catalog and the cache of verified images (vmimage(1)).
/// `-l` lists the catalog, `NAME …` pulls, `-c` checks the cache, `-r`
/// removes from it. Each listing is one value rendered as text or JSON.
public enum VMImageCommand: Command {
    public static let spec = CommandSpec(
        name: "vmimage",
        summary: "list, download, check and remove images by name",
        synopsis: ["[-hqv] [-o setting=value] [--] name ...", "[-hjqv] -l", "[-hjqv] -c", "[-hqv] -r name ..."],
        options: [
            OptionSpec("c", "check the cache: verify every image's digest, list images no VM uses"),
            OptionSpec("j", "print JSON"),
            OptionSpec("l", "list the catalog"),
            OptionSpec("o", "setting=value", "override a setting (cfg_images_mirror, cfg_images_unverified)"),
            OptionSpec("r", "remove the named images from the cache"),
        ],
        operands: "[name ...]",
        operandCompletion: .image,
        exitCodes: [(0, "success"), (1, "an image could not be pulled, checked or removed"), (2, "wrong usage"),
                    (3, "-c found a corrupt image")]
    )

    /// What the command line asks for (vmimage(1)).
    struct Options {
        enum Action { case pull, list, check, remove }
        var action: Action
        var json: Bool
        var names: [String]
        var commandLine: CommandLineSettings

        init(_ args: ParsedArguments) throws {
            let chosen = [("l", Action.list), ("c", .check), ("r", .remove)].filter { args.has(Character($0.0)) }
            guard chosen.count <= 1 else { throw VMToolsError.usage("-l, -c and -r cannot be combined") }
            action = chosen.first?.1 ?? .pull
            json = args.has("j")
            names = args.operands
            commandLine = try SharedOptions.settings(args)
            switch action {
            case .list, .check:
                guard names.isEmpty else { throw VMToolsError.usage("-\(action == .list ? "l" : "c") takes no operands") }
            case .pull, .remove:
                guard !json else { throw VMToolsError.usage("-j goes with -l or -c") }
                guard !names.isEmpty else {
                    throw VMToolsError.usage(action == .pull ? "name the images to pull, or give -l, -c or -r" : "name the images to remove")
                }
            }
        }
    }

    public static func run(_ args: ParsedArguments, _ context: Context) throws -> ExitCode {
        let options = try Options(args)
        let (global, _) = try context.loadGlobal(args, commandLine: options.commandLine)
        let cache = ImageCache(environment: context.environment)
        let catalog = ImageCatalog(paths: global.paths, includeUser: global.includeUser)
        switch options.action {
        case .list:
            let rows = try listing(catalog: catalog, cache: cache)
            if options.json { context.console.printJSON(.array(rows.map(\.json))) } else { for l in text(rows) { context.console.print(l) } }
            return .success
        case .pull:
            Interrupt.block()
            return try pull(options.names, catalog: catalog, cache: cache, global: global, context: context)
        case .check:
            Interrupt.block()
            let checked = try check(cache: cache, global: global, context: context)
            if options.json {
                context.console.printJSON(.array(checked.map(\.json)))
            } else if !checked.isEmpty {
                for l in Formatting.table([["DIGEST", "ENTRY", "DATE", "SIZE", "STATE", "USERS"]] + checked.map(\.cells)) { context.console.print(l) }
            }
            return checked.contains { $0.found != nil } ? .soft : checked.contains { $0.error != nil } ? .failure : .success
        case .remove:
            Interrupt.block()
            return try remove(options.names, catalog: catalog, cache: cache, global: global, context: context)
        }
    }

    /// Which of an entry's URLs to pull: the VMs' architecture
    /// (`vm_qemu_arch`), so vmimage caches what vmcreate would use.
    static func architecture(_ global: GlobalConfig) -> String {
        let a = global.settings.value(SettingKey.qemuArch)
        return a.isEmpty ? "x86_64" : a
    }

    // MARK: -l

    /// One catalog entry and its cached builds.
    struct Row {
        var entry: ImageEntry
        var versions: [ImageCache.Image]

        var size: UInt64 { versions.reduce(0) { $0 + $1.size } }

        var json: JSON {
            .object([
                ("name", .string(entry.name)), ("aliases", .array(entry.aliases.map { .string($0) })),
                ("kind", .string(entry.kind.rawValue)), ("file", .string(entry.file)),
                ("cached", .bool(!versions.isEmpty)), ("size", .number(Double(size))),
                ("versions", .array(versions.map(VMImageCommand.json))),
            ])
        }
    }

    static func listing(catalog: ImageCatalog, cache: ImageCache) throws -> [Row] {
        let images = try cache.images()
        return try catalog.entries().map { e in Row(entry: e, versions: images.filter { $0.entry == e.name }.sorted { $0.date < $1.date }) }
    }

    static func text(_ rows: [Row]) -> [String] {
        let cells = rows.map { r in
            [r.entry.name, r.entry.kind.rawValue, r.versions.isEmpty ? "no" : "yes", r.versions.isEmpty ? "-" : sizeText(r.size),
             r.versions.isEmpty ? "-" : r.versions.map { "\(day($0.date)) \(shortDigest($0.digest))" }.joined(separator: ", "),
             r.entry.aliases.isEmpty ? "-" : r.entry.aliases.joined(separator: ",")]
        }
        return Formatting.table([["NAME", "KIND", "CACHED", "SIZE", "VERSIONS", "ALIASES"]] + cells)
    }

    static func json(_ i: ImageCache.Image) -> JSON {
        .object([("digest", .string(i.digest.description)), ("date", .string(isoDate(i.date))), ("size", .number(Double(i.size))),
                 ("entry", .string(i.entry)), ("url", .string(i.url)), ("path", .string(i.path))])
    }

    // MARK: pull

    static func pull(_ names: [String], catalog: ImageCatalog, cache: ImageCache, global: GlobalConfig, context: Context) throws -> ExitCode {
        let puller = ImagePuller(cache: cache, mirror: try global.imageMirror(),
                                 allowUnverified: global.settings.isYes(SettingKey.imagesUnverified),
                                 architecture: architecture(global), console: context.console, environment: context.environment)
        var failed = false
        for name in names {
            do {
                let image = try puller.pull(try catalog.require(name))
                // The result, for a script: where the verified image is.
                context.console.print(image.path)
                context.console.trace("\(name): \(image.digest) from \(image.url)")
            } catch let e as VMToolsError {
                failed = true
                context.console.error(e)
                if Interrupt.pending() != nil { break }
            }
        }
        return failed ? .failure : .success
    }

    // MARK: -c

    /// One cached image as `-c` found it.
    struct Checked {
        var image: ImageCache.Image
        /// What the file hashes to when that is not its digest.
        var found: ImageDigest?
        /// Why it could not be hashed.
        var error: String?
        var users: [String]
        /// Listed users that no longer use it, dropped from the list.
        var dropped: [String]

        var state: String { error != nil ? "unreadable" : found != nil ? "corrupt" : "ok" }

        var cells: [String] {
            [shortDigest(image.digest), image.entry, day(image.date), sizeText(image.size), state, users.isEmpty ? "unused" : "\(users.count)"]
        }

        var json: JSON {
            var pairs: [(String, JSON)] = []
            if case let .object(p) = VMImageCommand.json(image) { pairs = p }
            pairs += [("state", .string(state)), ("found", .string(found?.description)), ("users", .array(users.map { .string($0) })),
                      ("unused", .bool(users.isEmpty)), ("dropped", .array(dropped.map { .string($0) }))]
            return .object(pairs)
        }
    }

    static func check(cache: ImageCache, global: GlobalConfig, context: Context) throws -> [Checked] {
        let console = context.console
        var out: [Checked] = []
        for image in try cache.images() {
            try Interrupt.check()
            var c = Checked(image: image, users: [], dropped: [])
            do {
                let digest = try hash(image.path, image.digest.algorithm, environment: context.environment)
                if digest != image.digest {
                    c.found = digest
                    // Found, as vmfix finds an issue: the check itself went through (status 3).
                    console.warning("\(image.path): corrupt: it hashes to \(digest), not \(image.digest) (entry \(image.entry)); " +
                                  "'vmimage -r \(image.digest)' removes it, and 'vmimage \(image.entry)' pulls it again")
                }
            } catch let e as VMToolsError {
                c.error = e.message
                console.error(e)
            }
            let (live, stale) = try cache.checkedUsers(of: image.digest, global: global, environment: context.environment)
            c.users = live
            for home in stale {
                try cache.removeUser(home, of: image.digest)
                c.dropped.append(home)
                console.info("\(image.path): dropped the stale user \(home), which no longer uses it")
            }
            out.append(c)
        }
        return out
    }

    /// The file's digest by the hashing child a pull uses (openssl, else
    /// coreutils): a multi-gigabyte image hashes at the disk's speed.
    static func hash(_ path: String, _ algorithm: ImageDigest.Algorithm, environment: [String: String]) throws -> ImageDigest {
        do {
            return try HashChild.digest(ofFile: path, algorithm, environment: environment)
        } catch let e as VMToolsError {
            throw VMToolsError(.failure, path, "cannot check it: \(e)")
        }
    }

    // MARK: -r

    /// The cached images an operand names: a digest, a file name in the
    /// cache, or an entry (its name, an alias, or the name a record keeps
    /// of an entry no longer in the catalog).
    static func images(named name: String, in images: [ImageCache.Image], catalog: ImageCatalog) -> [ImageCache.Image] {
        if let d = ImageDigest(parsing: name) { return images.filter { $0.digest == d } }
        if name.contains("/") || images.contains(where: { $0.path.lastPathComponent == name }) {
            return images.filter { $0.path.lastPathComponent == name.lastPathComponent }
        }
        let entry = ImageCatalog.isCandidateName(name) ? ((try? catalog.entry(named: name))??.name ?? name) : name
        return images.filter { $0.entry == entry }
    }

    static func remove(_ names: [String], catalog: ImageCatalog, cache: ImageCache, global: GlobalConfig, context: Context) throws -> ExitCode {
        let console = context.console
        var failed = false
        for name in names {
            do {
                let found = images(named: name, in: try cache.images(), catalog: catalog)
                guard !found.isEmpty else { throw VMToolsError(.failure, name, "no such image in the cache \(cache.directory)") }
                for image in found {
                    do {
                        try removeImage(image, cache: cache, global: global, environment: context.environment, console: console)
                        console.info("\(image.path): removed (\(image.entry), \(image.digest))")
                    } catch let e as VMToolsError {
                        failed = true
                        console.error(e)
                    }
                }
            } catch let e as VMToolsError {
                failed = true
                console.error(e)
            }
            if Interrupt.pending() != nil { break }
        }
        return failed ? .failure : .success
    }

    /// Under the cache's lock, so no VM is listed meanwhile: refused while
    /// a VM uses it; its stale users go with it.
    static func removeImage(_ image: ImageCache.Image, cache: ImageCache, global: GlobalConfig, environment: [String: String],
                            console: Console) throws {
        try cache.withUsersLock {
            let (live, _) = try cache.checkedUsers(of: image.digest, global: global, environment: environment)
            guard live.isEmpty else {
                throw VMToolsError(.failure, image.path, "used by \(live.count == 1 ? "the VM" : "the VMs") \(live.joined(separator: ", ")) " +
                                   "(\(image.entry)); not removed: delete \(live.count == 1 ? "it" : "them") first (vmrm), " +
                                   "or make \(live.count == 1 ? "it" : "them") independent (vmcp -a)")
            }
            // The image first: once it is gone no VM can come to rest on it.
            try FileSystem.removeFile(image.path)
            let stem = image.path.deletingLastPathComponent.appendingPathComponent(ImageCache.stem(image.digest))
            try FileSystem.removeFile(stem + ".record")
            try FileSystem.removeFile(cache.usersPath(of: image.digest))
        }
    }

    // MARK: Formatting

    /// `sha256:0123456789ab`: enough to tell builds apart in a table.
    static func shortDigest(_ d: ImageDigest) -> String { "\(d.algorithm.rawValue):\(d.hex.prefix(12))" }

    static func sizeText(_ bytes: UInt64) -> String { Formatting.bytes(bytes) }

    /// `2026-12-07`, UTC.
    static func day(_ seconds: Int) -> String { String(isoDate(seconds).prefix(10)) }

    /// `2026-12-07T18:30:00Z`.
    static func isoDate(_ seconds: Int) -> String {
        var t = time_t(seconds)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        var buf = [CChar](repeating: 0, count: 32)
        let n = strftime(&buf, buf.count, "%Y-%m-%dT%H:%M:%SZ", &tmv)
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
