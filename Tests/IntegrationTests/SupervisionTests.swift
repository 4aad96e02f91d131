import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import PushDeploy

/// A runner for a queue that never gets a deployment in these tests.
private struct IdleRunner: DeploymentRunner {
    func run(_ deployment: Deployment, app: AppConfig, progress: DeploymentProgress) async throws -> RolloutOutcome { .live }
}

extension RolloutTests {
    /// After the deployment: a JVM killed at 3 a.m., one that hangs, one that will not come back.
    @Suite("supervision of the live release")
    struct Supervision {
        /// Deploys 1.0 then 2.0 blue-green (1.0 warm), and returns supervision over the lab with a file history.
        private func deployed(_ lab: RolloutLab, startupTimeout: Duration = .seconds(30)) async throws
            -> (AppConfig, InstanceSupervision, FileDeploymentHistory) {
            let (blue, green) = lab.slots()
            let app = lab.app(strategy: .blueGreen(blue: blue, green: green), startupTimeout: startupTimeout)
            try lab.startNginx(for: app)
            let rollout = StrategyRollout(parts: lab.parts())
            let (v1, v2) = (try await lab.release("1.0"), try await lab.release("2.0"))
            _ = try await rollout.rollOut(v1, app: app, progress: lab.progress(app: app).0)
            _ = try await rollout.rollOut(v2, app: app, progress: lab.progress(app: app, id: 2).0)
            let history = FileDeploymentHistory(stateDirectory: lab.directory)
            try await history.open(apps: [app.name])
            let queue = DeployQueue(app: app, history: history, runner: IdleRunner())
            let supervision = InstanceSupervision(apps: [app], parts: lab.parts(), history: history, queues: [app.name: queue],
                                                  tick: .milliseconds(200))
            return (app, supervision, history)
        }

        private func live(_ lab: RolloutLab) throws -> Instance {
            try #require(try lab.stateOnDisk().live.first)
        }

        @Test("kill -9 of the live JVM: noticed within a second, restarted on its port, recorded, counted")
        func aKilledLiveInstanceIsRestarted() async throws {
            try await RolloutLab.with { lab in
                let (app, supervision, history) = try await deployed(lab)
                let before = try live(lab)
                let watcher = Task { await supervision.run() }
                defer { watcher.cancel() }
                let killed = ContinuousClock.now
                kill(try #require(before.pid), SIGKILL)
                // Back when nginx serves 2.0 again from the same port with a new process.
                var after = before
                while ContinuousClock.now - killed < .seconds(60) {
                    if let current = try? lab.stateOnDisk().entry(port: before.port), current.instance.pid != before.pid,
                       current.restarts == 1 { after = current.instance; break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(after.pid != before.pid, "not restarted within a minute")
                #expect(after.port == before.port && after.version == "2.0")
                #expect(await lab.eventuallyServesOnly("2.0"))
                let records = try await history.list(app: app.name)
                let restart = try #require(records.first { $0.kind == .restart })
                #expect(restart.status == .succeeded)
                #expect(restart.trigger.source == .supervisor)
                #expect(restart.trigger.message?.contains("exited") == true)
                #expect(restart.note?.contains("fallback (@pushdeploy_fallback) was 1.0 on port") == true, "\(restart.note ?? "no note")")
                #expect(restart.phases.first.map { $0.startedAt.timeIntervalSince(Date()) } ?? -99 > -60)
                let log = String(decoding: await history.readLog(app: app.name, id: restart.id, from: 0).data, as: UTF8.self)
                #expect(log.contains("supervision: 2.0 on port \(before.port) (live) exited"), "\(log)")
                // The warm slot was left alone.
                #expect(try lab.stateOnDisk().warm.first?.version == "1.0")
            }
        }

        @Test("a live release that cannot come back: traffic flips to the warm one, recorded as an automatic rollback")
        func aLiveInstanceThatWillNotComeBackFlipsToTheWarmOne() async throws {
            try await RolloutLab.with { lab in
                let (app, supervision, history) = try await deployed(lab, startupTimeout: .seconds(4))
                let before = try live(lab)
                // From now on 2.0 starts, but never turns healthy (as if its disk or config broke at 3 a.m.).
                let args = "\(lab.directory)/launch/2.0.args"
                try (String(contentsOfFile: args, encoding: .utf8) + "\"--health=down\"\n").write(toFile: args, atomically: true, encoding: .utf8)
                let watcher = Task { await supervision.run() }
                defer { watcher.cancel() }
                kill(try #require(before.pid), SIGKILL)
                // nginx falls back on the warm slot at once (error_page @pushdeploy_fallback); the flip follows the failed restart.
                #expect(await lab.eventuallyServesOnly("1.0", within: .seconds(5)))
                let started = ContinuousClock.now
                while ContinuousClock.now - started < .seconds(30), (try? lab.stateOnDisk().live.map(\.version)) != ["1.0"] {
                    try await Task.sleep(for: .milliseconds(100))
                }
                let state = try lab.stateOnDisk()
                #expect(state.live.map(\.version) == ["1.0"])
                #expect(state.entry(port: before.port) == nil)
                // The record is finished just after the state is written (the dead instance is stopped in between).
                var records = try await history.list(app: app.name)
                while ContinuousClock.now - started < .seconds(40), records.first(where: { $0.kind == .rollback })?.status.isFinished != true {
                    try await Task.sleep(for: .milliseconds(100))
                    records = try await history.list(app: app.name)
                }
                let rollback = try #require(records.first { $0.kind == .rollback })
                #expect(rollback.status == .succeeded)
                #expect(rollback.trigger.source == .supervisor)
                #expect(rollback.version == "1.0" && rollback.previousVersion == "2.0")
                #expect(records.contains { $0.kind == .restart && $0.status == .failed })
                #expect(NginxTrafficSwitch().currentPorts(app: app) == [state.live[0].port])
            }
        }

        @Test("a live JVM that hangs (SIGSTOP) fails its health checks and is replaced")
        func aHungLiveInstanceIsReplaced() async throws {
            try await RolloutLab.with { lab in
                let (app, supervision, history) = try await deployed(lab)
                let before = try live(lab)
                let watcher = Task { await supervision.run() }
                defer { watcher.cancel() }
                kill(try #require(before.pid), SIGSTOP)
                var replaced = false
                let started = ContinuousClock.now
                while ContinuousClock.now - started < .seconds(60) {
                    if let current = try? lab.stateOnDisk().entry(port: before.port), current.instance.pid != before.pid { replaced = true; break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(replaced)
                #expect(await lab.eventuallyServesOnly("2.0"))
                let restart = try #require(try await history.list(app: app.name).first { $0.kind == .restart })
                #expect(restart.trigger.message?.contains("stopped answering its health check") == true)
            }
        }
    }
}
