// swift-tools-version:6.0
import PackageDescription

// Layers, each importing only those below it (Docs/ARCHITECTURE.md):
// CSystem → VMToolsCore → VMToolsQEMU → VMToolsLaunch → VMToolsCommands → vmtools.
// Every file imports what it uses, extension members included.
let strictImports: [SwiftSetting] = [.enableUpcomingFeature("MemberImportVisibility")]

let package = Package(
    name: "vmtools",
    products: [
        .executable(name: "vmtools", targets: ["vmtools"]),
    ],
    targets: [
        .target(name: "CSystem"),
        .target(name: "VMToolsCore", dependencies: ["CSystem"], swiftSettings: strictImports),
        .target(name: "VMToolsQEMU", dependencies: ["VMToolsCore"], swiftSettings: strictImports),
        .target(name: "VMToolsLaunch", dependencies: ["VMToolsQEMU", "VMToolsCore"], swiftSettings: strictImports),
        .target(name: "VMToolsCommands", dependencies: ["VMToolsLaunch", "VMToolsQEMU", "VMToolsCore"], swiftSettings: strictImports),
        .executableTarget(name: "vmtools", dependencies: ["VMToolsCommands"], swiftSettings: strictImports),
        .testTarget(
            name: "VMToolsTests",
            dependencies: ["VMToolsCommands", "VMToolsLaunch", "VMToolsQEMU", "VMToolsCore"]
        ),
    ]
)
