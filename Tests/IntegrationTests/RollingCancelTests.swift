import Foundation
import Testing
@testable import PushDeploy

extension RolloutTests {
    @Suite("a rolling deployment cancelled midway")
    struct RollingCancelled {
        @Test("cancelled after the first port: every replaced port serves the old release again, nginx lists only ports that answer")
        func everyPortServesAgain() async throws {
            try await RolloutLab.with(rolling: true) { lab in
                let ports = lab.ports(3)
                let app = lab.app(strategy: .rolling(instances: ports))
                try lab.startNginx(for: app)
                let rollout = StrategyRollout(parts: lab.parts())
                let (v1, v2) = (try await lab.release("1.0"), try await lab.release("2.0", arguments: ["--startup-delay=1500ms"]))
                _ = try await rollout.rollOut(v1, app: app, progress: lab.progress(app: app).0)
                let load = try await NginxLoad.start(port: lab.nginx.port)

                let deployment = Task { try await rollout.rollOut(v2, app: app, progress: lab.progress(app: app, id: 2).0) }
                // Wait until the second port is being replaced (the first serves 2.0), then cancel, as a SIGTERM would.
                let started = ContinuousClock.now
                while ContinuousClock.now - started < .seconds(60) {
                    let state = try lab.stateOnDisk()
                    if state.entries.filter({ $0.instance.version == "2.0" }).count >= 2 { break }
                    try await Task.sleep(for: .milliseconds(50))
                }
                deployment.cancel()
                await #expect(throws: (any Error).self) { _ = try await deployment.value }

                let state = try lab.stateOnDisk()
                #expect(state.entries.count == 3, "\(state)")
                #expect(state.entries.allSatisfy { $0.role == .live && $0.instance.version == "1.0" }, "\(state)")
                let routed = try #require(NginxTrafficSwitch().currentPorts(app: app))
                #expect(Set(routed) == Set(ports))
                for port in routed {
                    #expect(await HTTPHealthChecker().isHealthy(port: port, health: app.health), "port \(port) is in the include but does not answer")
                }
                try await load.waitForMore(than: load.tally.answered, by: 30)
                let total = await load.stop()
                #expect(total.failures.isEmpty, "\(total.failures.count) failed requests: \(total.failures.prefix(5))")
                #expect(await lab.eventuallyServesOnly("1.0"))
            }
        }
    }
}
