import Foundation
import Testing
@testable import PushDeploy

extension RolloutTests {
    /// After the switch: a release that passes its health check but fails users is taken back by what nginx logged.
    @Suite("the guard during the watch")
    struct Guard {
        @Test("a release answering 500 to a fifth of requests is flipped back under load, with the figures recorded")
        func aFailingReleaseIsFlippedBack() async throws {
            try await RolloutLab.with { lab in
                let (blue, green) = lab.slots()
                var app = lab.app(strategy: .blueGreen(blue: blue, green: green), watch: .seconds(30))
                app.guardConfig = GuardConfig(maxErrorRatio: 0.05, minRequests: 20, window: .seconds(10))
                try lab.startNginx(for: app)
                let rollout = StrategyRollout(parts: lab.parts())
                let v1 = try await lab.release("1.0")
                let v2 = try await lab.release("2.0", arguments: ["--fail-ratio=0.2"])
                _ = try await rollout.rollOut(v1, app: plain(app), progress: lab.progress(app: app).0)
                let load = try await NginxLoad.start(port: lab.nginx.port)
                let log = MemoryDeploymentLog()
                let progress = DeploymentProgress.inMemory(Deployment(id: 2, app: lab.appName, kind: .deploy, trigger: Trigger(source: .manual),
                                                                      strategy: "blue-green"), log: log).0
                let started = ContinuousClock.now
                let outcome = try await rollout.rollOut(v2, app: app, progress: progress)
                let took = ContinuousClock.now - started
                let total = await load.stop()
                guard case let .rolledBack(reason) = outcome else {
                    Issue.record("the release was not taken back: \(outcome)\n\(log.text)")
                    return
                }
                #expect(reason.hasPrefix("the guard: "), "\(reason)")
                #expect(reason.contains("requests failed"))
                #expect(took < .seconds(20), "the watch ran \(took) before the flip (the window is 10 s)")
                #expect(NginxTrafficSwitch().currentPorts(app: app) == [blue])
                #expect(await lab.eventuallyServesOnly("1.0"))
                #expect(log.text.contains("guard: "), "\(log.text)")
                // The failures users saw are the bad release's own 500s, not an outage.
                #expect(total.failures.allSatisfy { $0.hasPrefix("status 500") }, "\(total.failures.prefix(3))")
            }
        }

        @Test("without nginx.access_log the guard says it is off, and the watch goes on as before")
        func noAccessLogMeansNoGuard() async throws {
            try await RolloutLab.with { lab in
                let (blue, green) = lab.slots()
                var app = lab.app(strategy: .blueGreen(blue: blue, green: green), watch: .seconds(1))
                app.guardConfig = GuardConfig()
                app.nginx?.accessLog = nil
                try lab.startNginx(for: app)
                let log = MemoryDeploymentLog()
                let progress = DeploymentProgress.inMemory(Deployment(id: 1, app: lab.appName, kind: .deploy, trigger: Trigger(source: .manual),
                                                                      strategy: "blue-green"), log: log).0
                #expect(try await StrategyRollout(parts: lab.parts()).rollOut(try await lab.release("1.0"), app: app, progress: progress) == .live)
                #expect(log.text.contains("guard: off, because nginx.access_log is not set"))
            }
        }

        /// The app without its watch, for the first deployment.
        private func plain(_ app: AppConfig) -> AppConfig {
            var app = app
            app.watch = .zero
            return app
        }
    }
}
