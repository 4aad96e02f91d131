import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import PushDeploy

/// `pushdeploy serve` stopped with SIGTERM in each phase of a deployment, with a client following the log.
@Suite("SIGTERM in each phase", .serialized)
struct GracefulStopTests {
    @Test(.enabled(if: ServeLab.toolsPresent, "needs gradle, java, git, curl and nginx"), .timeLimit(.minutes(8)))
    func aStopInAnyPhaseIsQuickAndTruthful() async throws {
        let lab = try ServeLab(watch: "20s", runExtra: ["--startup-delay=3s"])
        defer { lab.tearDown() }
        try await lab.startServer()
        let first = try lab.deploy()
        let v1 = try #require(try await lab.waitFor(first) { $0.status.isFinished }.version)
        #expect(lab.servedVersion() == v1)
        var live = v1
        for phase in [DeploymentStatus.building, .starting, .watching] {
            try lab.commitChange("stop in \(phase.rawValue)")
            let id = try lab.deploy()
            try await lab.waitFor(id) { $0.status == phase }
            // A follower of the log, as `pushdeploy logs -f` or the dashboard keeps one open.
            let followOutput = lab.scratch + "/follow-\(phase.rawValue).txt"
            let follower = try Integration.spawn("/usr/bin/curl", ["-sN", "-H", "Authorization: Bearer \(lab.token)",
                                                                   "http://127.0.0.1:\(lab.serverPort)/deployments/\(id)/log?follow=1"],
                                                 outputPath: followOutput)
            try await Task.sleep(for: .milliseconds(300))
            let took = await lab.terminateServer()
            #expect(took < .seconds(10), "the server took \(took) to stop in \(phase.rawValue)")
            var status: Int32 = 0
            let followerEnded = (0..<100).contains { _ in
                if waitpid(follower, &status, WNOHANG) == follower { return true }
                usleep(50_000)
                return false
            }
            if !followerEnded { kill(follower, SIGKILL); waitpid(follower, &status, 0) }
            #expect(followerEnded, "the log follower was still connected after the stop in \(phase.rawValue)")

            let record = try #require(lab.record(id))
            #expect(record.status == .interrupted, "stopped in \(phase.rawValue): \(record.status)")
            #expect(record.error == "pushdeploy was stopped during \(phase.rawValue)")
            if phase == .watching, let version = record.version { live = version }
            // No process of the build is left behind.
            let builders = TestProcesses.all().filter { entry in
                let cwd = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(entry.pid)/cwd")) ?? ""
                return cwd.hasPrefix(lab.scratch + "/state/") && entry.arguments.joined(separator: " ").contains("gradle")
            }
            #expect(builders.isEmpty, "a build process outlived the stop in \(phase.rawValue): \(builders.map(\.arguments))")
            // The live release served throughout and outlives the server; a restart reconciles.
            #expect(lab.servedVersion() == live, "after the stop in \(phase.rawValue)")
            try await lab.startServer()
            let state = lab.appState()
            #expect(state.entries.allSatisfy { $0.role != .starting }, "\(state)")
            #expect(state.live.map(\.version) == [live])
        }
    }
}
