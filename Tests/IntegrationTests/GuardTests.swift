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
                let marker = lab.directory + "/after_rollback"
                var app = lab.app(strategy: .blueGreen(blue: blue, green: green), watch: .seconds(30),
                                  hooks: LifecycleHooks(afterRollback: ["/bin/sh", "-c", "echo \"$DEPLOY_VERSION $DEPLOY_PORT\" > '\(marker)'"]))
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
                #expect((try? String(contentsOfFile: marker, encoding: .utf8)) == "1.0 \(blue)\n", "after_rollback ran for the release live again")
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

        @Test("a release that stalls some answers (accepts, never replies) is caught by the latency ceiling")
        func aStallingReleaseIsCaughtByTheCeiling() async throws {
            // nginx gives up on a stalled request after its proxy_read_timeout (1 s here) and logs it; the warm slot answers it.
            try await RolloutLab.with(readTimeout: .seconds(1)) { lab in
                let (blue, green) = lab.slots()
                var app = lab.app(strategy: .blueGreen(blue: blue, green: green), watch: .seconds(30))
                // A ratio ceiling too high to trip: only the latency ceiling can catch it.
                app.guardConfig = GuardConfig(maxErrorRatio: 0.5, minRequests: 20, window: .seconds(10), maxP99: .milliseconds(500))
                try lab.startNginx(for: app)
                let rollout = StrategyRollout(parts: lab.parts())
                _ = try await rollout.rollOut(try await lab.release("1.0"), app: plain(app), progress: lab.progress(app: app).0)
                let v2 = try await lab.release("2.0", arguments: ["--stall-ratio=0.04"])
                let load = try await NginxLoad.start(port: lab.nginx.port, clients: 6)
                let (progress, record) = lab.progress(app: app, id: 2)
                let outcome = try await rollout.rollOut(v2, app: app, progress: progress)
                let total = await load.stop()
                guard case let .rolledBack(reason) = outcome else {
                    Issue.record("the stalling release was not taken back: \(outcome)")
                    return
                }
                #expect(reason.contains("above the p99 ceiling of 500ms"), "\(reason)")
                #expect(NginxTrafficSwitch().currentPorts(app: app) == [blue])
                #expect(await lab.eventuallyServesOnly("1.0"))
                let steps = await record.deployment.guardSteps ?? []
                #expect(steps.last?.verdict == .tripped && (steps.last?.release.p99Seconds ?? 0) >= 0.9, "\(steps)")
                // Every stalled request was answered by the warm slot after nginx's timeout: no client saw a failure.
                #expect(total.failures.isEmpty, "\(total.failures.prefix(3))")
            }
        }

        @Test("rolling: a release failing a fifth of its requests is rolled back port by port after the guard trips")
        func rollingIsTakenBack() async throws {
            try await RolloutLab.with(rolling: true) { lab in
                let ports = lab.ports(2)
                var app = lab.app(strategy: .rolling(instances: ports), watch: .seconds(30))
                app.guardConfig = GuardConfig(maxErrorRatio: 0.05, minRequests: 20, window: .seconds(10))
                try lab.startNginx(for: app)
                let rollout = StrategyRollout(parts: lab.parts())
                _ = try await rollout.rollOut(try await lab.release("1.0"), app: plain(app), progress: lab.progress(app: app).0)
                let load = try await NginxLoad.start(port: lab.nginx.port)
                let (progress, record) = lab.progress(app: app, id: 2)
                let outcome = try await rollout.rollOut(try await lab.release("2.0", arguments: ["--fail-ratio=0.2"]), app: app, progress: progress)
                let total = await load.stop()
                guard case let .rolledBack(reason) = outcome else {
                    Issue.record("the release was not taken back: \(outcome)")
                    return
                }
                #expect(reason.hasPrefix("the guard: "), "\(reason)")
                #expect(Set(NginxTrafficSwitch().currentPorts(app: app) ?? []) == Set(ports))
                #expect(await lab.eventuallyServesOnly("1.0"))
                #expect(try lab.stateOnDisk().live.map(\.version) == ["1.0", "1.0"])
                #expect(await record.deployment.guardSteps?.last?.verdict == .tripped)
                #expect(total.failures.allSatisfy { $0.hasPrefix("status 500") }, "only the bad release's own 500s: \(total.failures.prefix(3))")
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

extension RolloutTests {
    /// `strategy: canary`: the new release gets a share of requests per step, judged against the stable release.
    @Suite("weighted canary")
    struct Canary {
        @Test("a healthy release passes every step under load; both releases answer during a step; nothing fails")
        func aHealthyReleasePassesEveryStep() async throws {
            try await RolloutLab.with(canary: true) { lab in
                let (blue, green) = lab.slots()
                var app = lab.app(strategy: .canary(blue: blue, green: green, plan: CanaryPlan(steps: [10, 50, 100], stepWatch: .seconds(3))),
                                  watch: .seconds(2))
                app.guardConfig = GuardConfig(maxErrorRatio: 0.05, minRequests: 10, window: .seconds(10))
                try lab.startNginx(for: app)
                let rollout = StrategyRollout(parts: lab.parts())
                _ = try await rollout.rollOut(try await lab.release("1.0"), app: app, progress: lab.progress(app: app).0)
                #expect(await lab.eventuallyServesOnly("1.0"))
                let load = try await NginxLoad.start(port: lab.nginx.port)
                let (progress, record) = lab.progress(app: app, id: 2)
                let outcome = try await rollout.rollOut(try await lab.release("2.0"), app: app, progress: progress)
                let total = await load.stop()
                #expect(outcome == .live)
                #expect(total.failures.isEmpty, "\(total.failures.prefix(3))")
                #expect((total.versions["1.0"] ?? 0) > 0 && (total.versions["2.0"] ?? 0) > 0, "\(total.versions)")
                let steps = await record.deployment.guardSteps ?? []
                #expect(steps.map(\.percent) == [10, 50, 100], "\(steps)")
                #expect(steps.allSatisfy { $0.verdict == .passed }, "\(steps)")
                #expect(steps.prefix(2).allSatisfy { ($0.stable?.requests ?? 0) > 0 }, "each step is judged beside the stable release")
                #expect(NginxTrafficSwitch().currentPorts(app: app) == [green])
                #expect(await lab.eventuallyServesOnly("2.0"))
                #expect(try lab.stateOnDisk().warm.map(\.version) == ["1.0"])
                let phases = await record.deployment.phases.map(\.name)
                #expect(phases.filter { $0 == .watching }.count == 3, "a watch per step below 100 %, then the watch: \(phases)")
            }
        }

        @Test("a release failing a fifth of its requests is caught at the 10 % step; every request goes back to the stable release")
        func aFailingReleaseIsCaughtAtTheFirstStep() async throws {
            try await RolloutLab.with(canary: true) { lab in
                let (blue, green) = lab.slots()
                var app = lab.app(strategy: .canary(blue: blue, green: green, plan: CanaryPlan(steps: [10, 50, 100], stepWatch: .seconds(30))),
                                  watch: .seconds(30))
                app.guardConfig = GuardConfig(maxErrorRatio: 0.05, minRequests: 20, window: .seconds(10))
                try lab.startNginx(for: app)
                let rollout = StrategyRollout(parts: lab.parts())
                _ = try await rollout.rollOut(try await lab.release("1.0"), app: app, progress: lab.progress(app: app).0)
                let v2 = try await lab.release("2.0", arguments: ["--fail-ratio=0.2"])
                let load = try await NginxLoad.start(port: lab.nginx.port)
                let (progress, record) = lab.progress(app: app, id: 2)
                let started = ContinuousClock.now
                let outcome = try await rollout.rollOut(v2, app: app, progress: progress)
                let took = ContinuousClock.now - started
                let total = await load.stop()
                guard case let .rolledBack(reason) = outcome else {
                    Issue.record("the release was not taken back: \(outcome)")
                    return
                }
                #expect(reason.hasPrefix("the guard: ") && reason.hasSuffix("(canary step 10 %)"), "\(reason)")
                #expect(reason.contains("the stable release: "), "judged against the stable release: \(reason)")
                #expect(took < .seconds(10), "caught early in the first step: \(took)\n\((progress.log as? MemoryDeploymentLog)?.text ?? "")")
                #expect(NginxTrafficSwitch().currentPorts(app: app) == [blue])
                #expect(await lab.eventuallyServesOnly("1.0"))
                #expect(try lab.stateOnDisk().live.map(\.version) == ["1.0"])
                #expect(!lab.runningVersions().contains("2.0"), "the canary is stopped")
                let steps = await record.deployment.guardSteps ?? []
                #expect(steps.last?.percent == 10 && steps.last?.verdict == .tripped, "\(steps)")
                // Only the canary's share saw its failures: a small part of all requests.
                let all = total.answered
                #expect(total.failures.allSatisfy { $0.hasPrefix("status 500") }, "\(total.failures.prefix(3))")
                #expect(Double(total.failures.count) < Double(all) * 0.05, "\(total.failures.count) of \(all) failed")
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
