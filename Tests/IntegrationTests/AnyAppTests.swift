import Foundation
import Testing
@testable import PushDeploy

extension RolloutTests {
    /// pushdeploy must work with an app it did not write: this one answers `{"status":"UP"}` to everything, so no page
    /// names a release; the switch is proven by the backend nginx names in `X-Pushdeploy-Upstream`.
    @Suite("an app whose every answer is the same fixed text")
    struct AnyApp {
        @Test("blue-green: deploy, deploy, hot rollback under load; every request answered, nginx on the right slot each time")
        func blueGreen() async throws {
            try await RolloutLab.with { lab in
                let (blue, green) = lab.slots()
                let app = lab.app(strategy: .blueGreen(blue: blue, green: green))
                try lab.startNginx(for: app)
                let rollout = StrategyRollout(parts: lab.parts())
                let (v1, v2) = (try await lab.fixedRelease("1.0"), try await lab.fixedRelease("2.0"))
                #expect(try await rollout.rollOut(v1, app: app, progress: lab.progress(app: app).0) == .live)
                #expect(NginxTrafficSwitch().currentPorts(app: app) == [blue])

                let load = try await NginxLoad.start(port: lab.nginx.port)
                let (deploy, deployRecord) = lab.progress(app: app, id: 2)
                #expect(try await rollout.rollOut(v2, app: app, progress: deploy) == .live)
                #expect(NginxTrafficSwitch().currentPorts(app: app) == [green])
                #expect(try lab.stateOnDisk().entry(port: green)?.role == .live)
                let rollback = DeploymentProgress.inMemory(
                    Deployment(id: 3, app: lab.appName, kind: .rollback, trigger: Trigger(source: .manual), strategy: "blue-green")).0
                #expect(try await rollout.rollOut(v1, app: app, progress: rollback) == .live)
                #expect(NginxTrafficSwitch().currentPorts(app: app) == [blue])
                try await load.waitForMore(than: load.tally.answered, by: 30)
                let total = await load.stop()
                #expect(total.failures.isEmpty, "\(total.failures.count) failed requests: \(total.failures.prefix(5))")
                #expect(Set(total.versions.keys) == [#"{"status":"UP"}"#])
                #expect(await deployRecord.deployment.status == .switching)
            }
        }

        @Test("rolling over three instances under load: every request answered")
        func rolling() async throws {
            try await RolloutLab.with(rolling: true) { lab in
                let ports = lab.ports(3)
                let app = lab.app(strategy: .rolling(instances: ports))
                try lab.startNginx(for: app)
                let rollout = StrategyRollout(parts: lab.parts())
                let (v1, v2) = (try await lab.fixedRelease("1.0"), try await lab.fixedRelease("2.0"))
                #expect(try await rollout.rollOut(v1, app: app, progress: lab.progress(app: app).0) == .live)
                let load = try await NginxLoad.start(port: lab.nginx.port)
                #expect(try await rollout.rollOut(v2, app: app, progress: lab.progress(app: app, id: 2).0) == .live)
                try await load.waitForMore(than: load.tally.answered, by: 30)
                let total = await load.stop()
                #expect(total.failures.isEmpty, "\(total.failures.count) failed requests: \(total.failures.prefix(5))")
                #expect(Set(NginxTrafficSwitch().currentPorts(app: app) ?? []) == Set(ports))
                #expect(try lab.stateOnDisk().entries.allSatisfy { $0.instance.version == "2.0" && $0.role == .live })
            }
        }
    }
}
