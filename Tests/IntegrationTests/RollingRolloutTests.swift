import Foundation
import Testing
@testable import PushDeploy

extension RolloutTests {
    @Suite("rolling with real instances and an nginx upstream")
    struct Rolling {
        @Test("a second release replaces all three instances; nginx then serves only the new one")
        func replacesAllInstances() async throws {
            try await RolloutLab.with(rolling: true) { lab in
                let ports = lab.ports(3)
                let app = lab.app(strategy: .rolling(instances: ports))
                try lab.startNginx(for: app)
                let rollout = StrategyRollout(parts: lab.parts())
                let (v1, v2) = (try await lab.release("1.0"), try await lab.release("2.0"))

                #expect(try await rollout.rollOut(v1, app: app, progress: lab.progress(app: app).0) == .live)
                let first = try lab.stateOnDisk()
                #expect(first.entries.map(\.instance.port) == ports.sorted())
                #expect(first.entries.allSatisfy { $0.role == .live && $0.instance.version == "1.0" })
                #expect(lab.answers(otherThan: "1.0").isEmpty)
                let firstPids = first.entries.map(\.instance.pid)

                let (progress, record) = lab.progress(app: app, id: 2)
                #expect(try await rollout.rollOut(v2, app: app, progress: progress) == .live)

                #expect(await lab.eventuallyServesOnly("2.0"))
                #expect(NginxTrafficSwitch().currentPorts(app: app) == ports.sorted())
                let state = try lab.stateOnDisk()
                #expect(state.entries.count == 3)
                #expect(state.entries.allSatisfy { $0.role == .live && $0.instance.version == "2.0" })
                #expect(state.entries.map(\.instance.port) == ports.sorted())
                #expect(Set(state.entries.map(\.instance.pid)).isDisjoint(with: firstPids))
                #expect(lab.runningVersions() == ["2.0", "2.0", "2.0"])
                #expect(await record.deployment.phases.map(\.name) == [.queued, .starting, .healthy, .switching])
            }
        }

        @Test("a release that fails its health check: the replaced port gets the old release back, nginx serves it on all")
        func failureRestoresThePreviousRelease() async throws {
            try await RolloutLab.with(rolling: true) { lab in
                let ports = lab.ports(3)
                let app = lab.app(strategy: .rolling(instances: ports), startupTimeout: .seconds(3))
                try lab.startNginx(for: app)
                let rollout = RollingRollout(parts: lab.parts())
                let v1 = try await lab.release("1.0")
                let v2 = try await lab.release("2.0", arguments: ["--health=down"])
                _ = try await rollout.rollOut(v1, app: app, progress: lab.progress(app: app).0)
                let before = try lab.stateOnDisk()

                let log = MemoryDeploymentLog()
                let (progress, _) = DeploymentProgress.inMemory(
                    Deployment(id: 2, app: lab.appName, kind: .deploy, trigger: Trigger(source: .manual), strategy: "rolling"), log: log)
                let error = await #expect(throws: RolloutError.self) { try await rollout.rollOut(v2, app: app, progress: progress) }
                guard case let .rollingFailed(_, port, reason, restored) = error else {
                    Issue.record("expected rollingFailed, got \(String(describing: error))")
                    return
                }
                #expect(port == ports[0])
                #expect(reason.contains("not healthy within"), "\(reason)")
                #expect(restored == [ports[0]])

                #expect(NginxTrafficSwitch().currentPorts(app: app) == ports.sorted())
                #expect(await lab.eventuallyServesOnly("1.0"))
                let state = try lab.stateOnDisk()
                #expect(state.entries.map(\.instance.port) == ports.sorted())
                #expect(state.entries.allSatisfy { $0.role == .live && $0.instance.version == "1.0" })
                // The two ports never touched keep their very processes; the first got a new one.
                for port in ports.dropFirst() {
                    #expect(state.entry(port: port) == before.entry(port: port))
                }
                #expect(state.entry(port: ports[0])?.instance.pid != before.entry(port: ports[0])?.instance.pid)
                #expect(lab.runningVersions() == ["1.0", "1.0", "1.0"])
                #expect(log.text.contains("stopping 2.0 on port \(ports[0])"), "\(log.text)")
            }
        }
    }
}
