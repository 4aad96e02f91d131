import Foundation
import Testing
@testable import PushDeploy

/// The binary `make release` builds, the one an operator installs: Swift's runtime and Foundation linked in, lld's
/// packed relocations. Runs only when `PUSHDEPLOY_EXECUTABLE` names it: `make test`'s second pass, with every suite
/// that starts the binary; a plain `swift test` skips it (and it fails for a debug build, which loads the toolchain's
/// libraries).
@Suite("The release binary", .serialized)
struct ReleaseBinaryTests {
    static let isReleasePass = ProcessInfo.processInfo.environment[Integration.executableVariable].map { !$0.isEmpty } ?? false

    @Test("serves with no Swift library loaded from the toolchain, and answers a signed push with its record on disk",
          .enabled(if: isReleasePass, "make test sets PUSHDEPLOY_EXECUTABLE to the release build"),
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/curl")),
          .timeLimit(.minutes(2)))
    func servesWithTheRuntimeLinkedIn() async throws {
        let folder = NSTemporaryDirectory() + "pushdeploy-release-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let server = try await RunningServer.minimal(in: folder)
        defer { server.stop() }
        let pid = server.process.processIdentifier

        // What the process maps: the C libraries Debian has (libgit2, libc, libstdc++, zlib and theirs), no Swift
        // library from the toolchain (the binary runs where no Swift is installed).
        let maps = String(decoding: try #require(ProcFile.read("/proc/\(pid)/maps")), as: UTF8.self)
        let libraries = Set(maps.split(separator: "\n").compactMap { line -> String? in
            guard let path = line.split(separator: " ", omittingEmptySubsequences: true).last, path.hasPrefix("/"),
                  path.contains(".so") else { return nil }
            return String(path)
        })
        let swiftLibraries = libraries.filter { path in
            ["libswift", "libFoundation", "lib_FoundationICU", "libdispatch", "libBlocksRuntime"].contains { path.contains("/" + $0) }
        }
        #expect(swiftLibraries.isEmpty, "loaded from the toolchain: \(swiftLibraries.sorted())")
        #expect(libraries.contains { $0.contains("libgit2") }, "\(libraries.sorted())")

        // A signed GitHub push: 202, and the record it names is on disk when the answer comes.
        let body = Data(#"{"ref":"refs/heads/main","after":"0123456789abcdef0123456789abcdef01234567","repository":{"full_name":"acme/shop","clone_url":"\#(folder)/missing"},"head_commit":{"id":"0123456789abcdef0123456789abcdef01234567","message":"m"}}"#.utf8)
        let (status, answer, code) = try Integration.postGitHubPush(body, secret: "secret", port: server.port, scratch: folder)
        #expect(status == 0)
        #expect(code == "202", "\(answer)")
        let id = try #require(ServeLab.deploymentID(in: answer), "\(answer)")
        let record = String(format: "%@/state/deployments/shop/%06d.json", folder, id)
        let deployment = try JSONDecoder.pushDeploy.decode(Deployment.self, from: Data(contentsOf: URL(fileURLWithPath: record)))
        #expect(deployment.id == id)
        #expect(deployment.trigger.source == .github)

        // For the record, not a target (bench/webhook-throughput holds that): what it keeps resident now.
        let procStatus = String(decoding: ProcFile.read("/proc/\(pid)/status") ?? Data(), as: UTF8.self)
        if let line = procStatus.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) {
            print("release binary: \(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().joined(separator: " ")) resident after one push")
        }
    }
}
