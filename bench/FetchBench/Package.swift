// swift-tools-version: 6.2
import Foundation
import PackageDescription

// The pushdeploy package this benchmark measures: the repository two levels up, unless
// PUSHDEPLOY_PACKAGE_PATH names another checkout of it. A path dependency is known by its folder's name.
let pushdeployPath = Context.environment["PUSHDEPLOY_PACKAGE_PATH"] ?? "../.."
let pushdeployIdentity = URL(fileURLWithPath: pushdeployPath, relativeTo: URL(fileURLWithPath: Context.packageDirectory))
    .standardizedFileURL.lastPathComponent.lowercased()

let package = Package(
    name: "FetchBench",
    platforms: [.macOS(.v15)],
    dependencies: [.package(path: pushdeployPath)],
    targets: [
        .executableTarget(
            name: "FetchBench",
            dependencies: [.product(name: "PushDeploy", package: pushdeployIdentity)]
        ),
    ]
)
