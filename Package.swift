// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "vmtools",
    products: [
        .executable(name: "vmtools", targets: ["vmtools"]),
        .library(name: "VMToolsKit", targets: ["VMToolsKit"]),
    ],
    targets: [
        .target(name: "CSystem"),
        .target(name: "VMToolsKit", dependencies: ["CSystem"]),
        .executableTarget(name: "vmtools", dependencies: ["VMToolsKit"]),
        .testTarget(
            name: "VMToolsKitTests",
            dependencies: ["VMToolsKit"]
        ),
    ]
)
