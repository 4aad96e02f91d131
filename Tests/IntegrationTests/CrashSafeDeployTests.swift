import Foundation
import Testing
@testable import PushDeploy

/// pushdeploy killed with SIGKILL in each phase of a deployment and started again.
///
/// Throughout, the live release keeps answering through nginx; after each restart the deployment reads
/// `interrupted`, no half-started instance is left running, and at the end a deployment goes live as usual.
@Suite("Crash safety: serve killed in each phase", .serialized)
struct CrashSafeDeployTests {
    @Test(.enabled(if: ServeLab.toolsPresent, "needs gradle, java, git, curl and nginx"))
    func killedInEachPhaseTheLiveReleaseServesAndTheNextDeploymentWorks() async throws {
        // Wide phases, so a kill lands in them: a 2 s start, a before_switch hook that waits while a flag file
        // exists, a 4 s watch window.
        let flag = NSTemporaryDirectory() + "pushdeploy-slow-switch-" + UUID().uuidString
        let lab = try ServeLab(watch: "4s", runExtra: ["--startup-delay=2s"],
                               beforeSwitch: ["/bin/sh", "-c", "if [ -e \(flag) ]; then sleep 20; fi"])
        defer {
            lab.tearDown()
            try? FileManager.default.removeItem(atPath: flag)
        }
        try await lab.startServer()
        let first = try lab.deploy()
        let v1 = try #require(try await lab.waitFor(first) { $0.status.isFinished }.version)
        #expect(lab.record(first)?.status == .succeeded, "\(lab.serverLog)")
        #expect(lab.servedVersion() == v1)

        // From here on every request through nginx must succeed, whatever happens to pushdeploy.
        let watcher = TrafficWatcher(port: lab.nginx.port) { status, body in status == 200 && body.contains("demo-app ") }
        var live = v1
        for phase in [DeploymentStatus.building, .starting, .healthy, .watching] {
            try lab.commitChange("crash in \(phase.rawValue)")
            if phase == .healthy { _ = FileManager.default.createFile(atPath: flag, contents: nil) }
            let id = try lab.deploy()
            try await lab.waitFor(id) { $0.status == phase }
            lab.killServer()
            try? FileManager.default.removeItem(atPath: flag)
            let afterKill = lab.servedVersion()
            #expect(afterKill != nil, "nothing served right after the kill in \(phase.rawValue)")

            try await lab.startServer()
            let record = try #require(lab.record(id))
            #expect(record.status == .interrupted, "killed in \(phase.rawValue): \(record.status)")
            // The switch happened before a kill in `watching`: the new release is live then, and stays live.
            if phase == .watching, let version = record.version { live = version }
            #expect(lab.servedVersion() == live, "after a kill in \(phase.rawValue)")
            let state = lab.appState()
            #expect(state.entries.allSatisfy { $0.role != .starting }, "a half-started instance is still recorded: \(state)")
            #expect(state.live.map(\.version) == [live])
            for port in [lab.slots.blue, lab.slots.green] where !PortProbe.isFree(port) {
                #expect(state.entry(port: port) != nil, "port \(port) is taken by an instance nobody recorded (killed in \(phase.rawValue))")
            }
        }

        // The next deployment works as if nothing had happened.
        try lab.commitChange("after the crashes")
        let last = try lab.deploy()
        let done = try await lab.waitFor(last) { $0.status.isFinished }
        #expect(done.status == .succeeded, "\(done.error ?? "")\n\(lab.serverLog)")
        #expect(lab.servedVersion() == done.version)

        let (requests, failures) = watcher.stop()
        #expect(failures.isEmpty, "\(failures.count) of \(requests) requests through nginx failed: \(failures.prefix(5))")
        #expect(requests > 50)
    }
}
