import Foundation
import Testing

/// The layers of Docs/ARCHITECTURE.md, read from the `import` lines: each
/// target imports only targets below it, and the executable stays a thin main.
@Suite struct ArchitectureTests {
    static let layers = ["CSystem", "VMToolsCore", "VMToolsQEMU", "VMToolsLaunch", "VMToolsCommands", "vmtools"]

    static func swiftFiles(in target: String) throws -> [String] {
        let root = Repo.root + "/Sources/" + target
        guard let e = FileManager.default.enumerator(atPath: root) else { return [] }
        return e.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }.map { root + "/" + $0 }
    }

    static func projectImports(_ path: String) throws -> Set<String> {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return Set(text.split(separator: "\n").compactMap { line -> String? in
            let words = line.split(separator: " ")
            guard words.count == 2, words[0] == "import" || words[0] == "@_exported" else { return nil }
            let name = String(words[1])
            return layers.contains(name) ? name : nil
        })
    }

    @Test func everyTargetImportsOnlyTheLayersBelowIt() throws {
        var checked = 0
        for (rank, target) in Self.layers.enumerated() where target != "CSystem" {
            let below = Set(Self.layers[..<rank])
            let files = try Self.swiftFiles(in: target)
            #expect(!files.isEmpty, "Sources/\(target) has no Swift files")
            for file in files {
                let wrong = try Self.projectImports(file).subtracting(below)
                #expect(wrong.isEmpty, "\(file) imports \(wrong.sorted()), not below \(target)")
                checked += 1
            }
        }
        #expect(checked > 90)
    }

    /// Package.swift declares the same order, so the compiler refuses an import going up.
    @Test func thePackageDeclaresTheSameLayers() throws {
        let manifest = try String(contentsOfFile: Repo.root + "/Package.swift", encoding: .utf8)
        for (rank, target) in Self.layers.enumerated() where rank > 0 {
            guard let line = manifest.split(separator: "\n").first(where: { $0.contains("arget(name: \"\(target)\"") }) else {
                Issue.record("Package.swift has no target \(target)")
                continue
            }
            let above = Self.layers[(rank + 1)...]
            for a in above { #expect(!line.contains("\"\(a)\""), "\(target) depends on \(a), which is above it") }
            #expect(line.contains("\"\(Self.layers[rank - 1])\""), "\(target) does not depend on the layer below it")
        }
    }

    @Test func theExecutableIsAThinMain() throws {
        let files = try Self.swiftFiles(in: "vmtools")
        #expect(files.map { ($0 as NSString).lastPathComponent } == ["main.swift"])
        let code = try String(contentsOfFile: files[0], encoding: .utf8).split(separator: "\n")
            .filter { !$0.isEmpty && !$0.hasPrefix("#") && !$0.hasPrefix("//") && !$0.hasPrefix("import ") }
        #expect(code == ["exit(VMTools.main(arguments: CommandLine.arguments))"])
    }
}
