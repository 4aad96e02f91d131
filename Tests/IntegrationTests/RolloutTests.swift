import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import PushDeploy

/// The rollout strategies with real parts: demo-app JVMs, HTTP health checks, a private nginx and `state.json`.
///
/// One suite with the strategies nested in it (here and in the files beside it), run one test at a time:
/// each test starts several JVMs, and two cores do not carry two such tests at once.
@Suite(.serialized, .timeLimit(.minutes(3)),
       .enabled(if: ["/usr/sbin/nginx", "/usr/bin/java", "/usr/bin/gradle"].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }))
enum RolloutTests {}

extension RolloutTests {
    @Suite("blue-green with real instances and nginx")
    struct BlueGreen {
        @Test("a second deployment goes live on the other slot; the first stays warm")
        func secondDeploymentGoesLive() async throws {
            try await RolloutLab.with { lab in
                let (blue, green) = lab.slots()
                let app = lab.app(strategy: .blueGreen(blue: blue, green: green))
                try lab.startNginx(for: app)
                let rollout = StrategyRollout(parts: lab.parts())
                let (v1, v2) = (try await lab.release("1.0"), try await lab.release("2.0"))

                let (first, firstRecord) = lab.progress(app: app)
                #expect(try await rollout.rollOut(v1, app: app, progress: first) == .live)
                #expect(lab.servedVersion() == "1.0")

                let (second, secondRecord) = lab.progress(app: app, id: 2)
                #expect(try await rollout.rollOut(v2, app: app, progress: second) == .live)
                #expect(await lab.eventuallyServesOnly("2.0"))
                #expect(NginxTrafficSwitch().currentPorts(app: app) == [green])

                let state = try lab.stateOnDisk()
                #expect(state.entries.map(\.role) == (blue < green ? [.warm, .live] : [.live, .warm]))
                #expect(state.entry(port: green)?.role == .live && state.entry(port: green)?.instance.version == "2.0")
                #expect(state.entry(port: green)?.instance.slot == "green")
                #expect(state.entry(port: blue)?.role == .warm && state.entry(port: blue)?.instance.version == "1.0")
                #expect(lab.runningVersions() == ["1.0", "2.0"])
                for record in [firstRecord, secondRecord] {
                    #expect(await record.deployment.phases.map(\.name) == [.queued, .starting, .healthy, .switching])
                }
            }
        }

        @Test("a release that never turns healthy: traffic and the live slot stay, the new instance is stopped")
        func failedHealthCheck() async throws {
            try await RolloutLab.with { lab in
                let (blue, green) = lab.slots()
                let app = lab.app(strategy: .blueGreen(blue: blue, green: green), startupTimeout: .seconds(3))
                try lab.startNginx(for: app)
                let rollout = BlueGreenRollout(parts: lab.parts())
                let v1 = try await lab.release("1.0")
                let v2 = try await lab.release("2.0", arguments: ["--health=down"])
                _ = try await rollout.rollOut(v1, app: app, progress: lab.progress(app: app).0)
                let before = try lab.stateOnDisk()
                let include = try String(contentsOfFile: lab.nginx.includeFile, encoding: .utf8)

                let (progress, record) = lab.progress(app: app, id: 2)
                await #expect(throws: HealthError.self) { try await rollout.rollOut(v2, app: app, progress: progress) }

                #expect(lab.answers(otherThan: "1.0").isEmpty)
                #expect(try String(contentsOfFile: lab.nginx.includeFile, encoding: .utf8) == include)
                #expect(try lab.stateOnDisk().entries == before.entries)
                #expect(lab.runningVersions() == ["1.0"])
                #expect(PortProbe.isFree(green))
                #expect(await record.deployment.phases.map(\.name) == [.queued, .starting])
            }
        }

        @Test("a failing before_switch hook: traffic never moves, the new instance is stopped")
        func failingBeforeSwitchHook() async throws {
            try await RolloutLab.with { lab in
                let (blue, green) = lab.slots()
                let app = lab.app(strategy: .blueGreen(blue: blue, green: green),
                                  hooks: LifecycleHooks(beforeSwitch: ["/bin/sh", "-c", "echo not today; exit 3"]))
                try lab.startNginx(for: app)
                let rollout = BlueGreenRollout(parts: lab.parts())
                let v1 = try await lab.release("1.0")
                let v2 = try await lab.release("2.0")
                // The first deployment runs the hook too: it must get past it.
                _ = try await BlueGreenRollout(parts: lab.parts(hooks: NoHooks())).rollOut(v1, app: app, progress: lab.progress(app: app).0)
                let before = try lab.stateOnDisk()

                let (progress, record) = lab.progress(app: app, id: 2)
                let error = await #expect(throws: HookError.self) { try await rollout.rollOut(v2, app: app, progress: progress) }
                guard case let .failed(hook, status, tail) = error else {
                    Issue.record("expected a failed hook, got \(String(describing: error))")
                    return
                }
                #expect(hook == "before_switch" && status == .exited(3) && tail.contains("not today"))

                #expect(lab.answers(otherThan: "1.0").isEmpty)
                #expect(NginxTrafficSwitch().currentPorts(app: app) == [blue])
                #expect(try lab.stateOnDisk().entries == before.entries)
                #expect(lab.runningVersions() == ["1.0"])
                #expect(await record.deployment.phases.map(\.name) == [.queued, .starting, .healthy])
            }
        }

        @Test("nginx -t fails: the include file is unchanged, the old version still serves, the new instance is stopped")
        func brokenNginx() async throws {
            try await RolloutLab.with { lab in
                let (blue, green) = lab.slots()
                var app = lab.app(strategy: .blueGreen(blue: blue, green: green))
                try lab.startNginx(for: app)
                let rollout = BlueGreenRollout(parts: lab.parts())
                let v1 = try await lab.release("1.0")
                let v2 = try await lab.release("2.0")
                _ = try await rollout.rollOut(v1, app: app, progress: lab.progress(app: app).0)
                let include = try Data(contentsOf: URL(fileURLWithPath: lab.nginx.includeFile))
                let before = try lab.stateOnDisk()

                app.nginx?.test = ["/bin/false"]
                let error = await #expect(throws: TrafficError.self) {
                    try await rollout.rollOut(v2, app: app, progress: lab.progress(app: app, id: 2).0)
                }
                guard case .testFailed = error else {
                    Issue.record("expected testFailed, got \(String(describing: error))")
                    return
                }
                #expect(try Data(contentsOf: URL(fileURLWithPath: lab.nginx.includeFile)) == include)
                #expect(lab.answers(otherThan: "1.0").isEmpty)
                #expect(try lab.stateOnDisk().entries == before.entries)
                #expect(lab.runningVersions() == ["1.0"])
            }
        }

        @Test("a release that turns unhealthy during the watch: traffic flips back and the new instance is stopped")
        func watchFlipsBack() async throws {
            try await RolloutLab.with { lab in
                let (blue, green) = lab.slots()
                let app = lab.app(strategy: .blueGreen(blue: blue, green: green), watch: .seconds(8), startupTimeout: .seconds(10))
                try lab.startNginx(for: app)
                let rollout = BlueGreenRollout(parts: lab.parts())
                let v1 = try await lab.release("1.0")
                // Healthy long enough to be switched to (a JVM answers well within 2 s here), DOWN soon after.
                let v2 = try await lab.release("2.0", arguments: ["--health-fail-after=2s"])
                _ = try await rollout.rollOut(v1, app: app, progress: lab.progress(app: app).0)
                let v1Instance = try #require(try lab.stateOnDisk().entry(port: blue)?.instance)

                let (progress, record) = lab.progress(app: app, id: 2)
                let started = ContinuousClock.now
                let outcome = try await rollout.rollOut(v2, app: app, progress: progress)
                #expect(outcome == .rolledBack(reason: "the new release turned unhealthy during the watch window"))
                // Caught soon after it turned bad, well before the 8 s watch window ended.
                #expect(ContinuousClock.now - started < .seconds(8))

                #expect(await lab.eventuallyServesOnly("1.0"))
                #expect(NginxTrafficSwitch().currentPorts(app: app) == [blue])
                let state = try lab.stateOnDisk()
                #expect(state.entries == [AppState.Entry(v1Instance, role: .live)])
                #expect(lab.runningVersions() == ["1.0"])
                #expect(await record.deployment.phases.map(\.name) == [.queued, .starting, .healthy, .switching, .watching])
            }
        }

        @Test("rollback to the warm slot is only an nginx flip: same process, well under a second")
        func hotRollback() async throws {
            try await RolloutLab.with { lab in
                let (blue, green) = lab.slots()
                let app = lab.app(strategy: .blueGreen(blue: blue, green: green))
                try lab.startNginx(for: app)
                let rollout = StrategyRollout(parts: lab.parts())
                let (v1, v2) = (try await lab.release("1.0"), try await lab.release("2.0"))
                _ = try await rollout.rollOut(v1, app: app, progress: lab.progress(app: app).0)
                _ = try await rollout.rollOut(v2, app: app, progress: lab.progress(app: app, id: 2).0)
                let warm = try #require(try lab.stateOnDisk().entry(port: blue))
                #expect(warm.role == .warm && warm.instance.version == "1.0")

                let log = MemoryDeploymentLog()
                let (progress, record) = DeploymentProgress.inMemory(
                    Deployment(id: 3, app: lab.appName, kind: .rollback, trigger: Trigger(source: .manual), strategy: "blue-green"), log: log)
                var outcome: RolloutOutcome?
                let took = try await ContinuousClock().measure { outcome = try await rollout.rollOut(v1, app: app, progress: progress) }

                #expect(outcome == .live)
                #expect(took < .seconds(1), "the rollback took \(took)")
                #expect(log.text.contains("already runs 1.0 and is healthy: no start needed"), "\(log.text)")
                #expect(!log.text.contains("started 1.0"))
                #expect(await lab.eventuallyServesOnly("1.0"))
                let state = try lab.stateOnDisk()
                #expect(state.entry(port: blue) == AppState.Entry(warm.instance, role: .live))
                #expect(state.entry(port: green)?.role == .warm && state.entry(port: green)?.instance.version == "2.0")
                #expect(lab.runningVersions() == ["1.0", "2.0"])
                #expect(await record.deployment.phases.map(\.name) == [.queued, .starting, .healthy, .switching])
            }
        }

        @Test("without a warm slot, rollback starts the stored jar on the idle slot")
        func rollbackFromStoredJar() async throws {
            try await RolloutLab.with { lab in
                let (blue, green) = lab.slots()
                let app = lab.app(strategy: .blueGreen(blue: blue, green: green), keepPreviousWarm: false)
                try lab.startNginx(for: app)
                let rollout = StrategyRollout(parts: lab.parts())
                let (v1, v2) = (try await lab.release("1.0"), try await lab.release("2.0"))
                _ = try await rollout.rollOut(v1, app: app, progress: lab.progress(app: app).0)
                _ = try await rollout.rollOut(v2, app: app, progress: lab.progress(app: app, id: 2).0)
                #expect(try lab.stateOnDisk().entries.map(\.instance.port) == [green])
                #expect(lab.runningVersions() == ["2.0"])

                let log = MemoryDeploymentLog()
                let (progress, _) = DeploymentProgress.inMemory(
                    Deployment(id: 3, app: lab.appName, kind: .rollback, trigger: Trigger(source: .manual), strategy: "blue-green"), log: log)
                #expect(try await rollout.rollOut(v1, app: app, progress: progress) == .live)

                #expect(log.text.contains("started 1.0 on port \(blue)"), "\(log.text)")
                #expect(log.text.contains("(\(green)) stops 2.0 (keep_previous_warm: false)") && !log.text.contains("keeps 2.0 warm"), "\(log.text)")
                #expect(await lab.eventuallyServesOnly("1.0"))
                let state = try lab.stateOnDisk()
                #expect(state.entries.count == 1)
                #expect(state.entry(port: blue)?.role == .live && state.entry(port: blue)?.instance.version == "1.0")
                #expect(lab.runningVersions() == ["1.0"])
            }
        }
    }
}
