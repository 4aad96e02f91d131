import Foundation
import Testing
@testable import PushDeploy

extension RolloutTests {
    /// Start-up reconciliation after pushdeploy died in the middle of a blue-green deployment.
    @Suite("reconciling state.json with running instances and nginx")
    struct Reconcile {
        @Test("a starting instance nginx does not point at is stopped; the live one is left alone")
        func stopsHalfStarted() async throws {
            try await RolloutLab.with { lab in
                let (blue, green) = lab.slots()
                let app = lab.app(strategy: .blueGreen(blue: blue, green: green))
                try lab.startNginx(for: app)
                let parts = lab.parts()
                let (v1, v2) = (try await lab.release("1.0"), try await lab.release("2.0"))
                _ = try await BlueGreenRollout(parts: parts).rollOut(v1, app: app, progress: lab.progress(app: app).0)
                let live = try #require(try lab.stateOnDisk().entry(port: blue))
                // What a deployment that died before its health check leaves behind.
                let started = try await parts.supervisor.start(v2, app: app, port: green, slot: "green", log: MemoryDeploymentLog())
                try await lab.state.update(app: lab.appName) { $0.set(started, role: .starting) }
                #expect(lab.runningVersions() == ["1.0", "2.0"])

                let notes = try await InstanceReconciler(parts: parts).reconcile(app)

                #expect(notes == ["stopping half-started 2.0 on port \(green)"])
                #expect(await !parts.supervisor.isRunning(started))
                #expect(lab.runningVersions() == ["1.0"])
                #expect(try lab.stateOnDisk().entries == [live])
                #expect(lab.answers(otherThan: "1.0").isEmpty)
            }
        }

        @Test("a starting instance nginx already points at is adopted as live; the previous one is kept warm")
        func adoptsSwitched() async throws {
            try await RolloutLab.with { lab in
                let (blue, green) = lab.slots()
                let app = lab.app(strategy: .blueGreen(blue: blue, green: green))
                try lab.startNginx(for: app)
                let parts = lab.parts()
                let (v1, v2) = (try await lab.release("1.0"), try await lab.release("2.0"))
                _ = try await BlueGreenRollout(parts: parts).rollOut(v1, app: app, progress: lab.progress(app: app).0)
                let previous = try #require(try lab.stateOnDisk().entry(port: blue)?.instance)
                // What a deployment that died between the switch and the state write leaves behind.
                let log = MemoryDeploymentLog()
                let started = try await parts.supervisor.start(v2, app: app, port: green, slot: "green", log: log)
                try await lab.state.update(app: lab.appName) { $0.set(started, role: .starting) }
                try await parts.health.waitUntilHealthy(port: green, health: app.health, log: log) { await parts.supervisor.isRunning(started) }
                try await parts.traffic.route(to: [green], app: app, expectVersion: "2.0", log: log)

                let notes = try await InstanceReconciler(parts: parts).reconcile(app)

                #expect(notes.contains("2.0 on port \(green) already serves traffic: adopted as live"), "\(notes)")
                #expect(notes.contains("1.0 on port \(blue) is not in nginx's include: kept warm"), "\(notes)")
                let state = try lab.stateOnDisk()
                // The very process started (the state file keeps start times to the millisecond only).
                #expect(state.entry(port: green)?.role == .live)
                #expect(state.entry(port: green)?.instance.pid == started.pid)
                #expect(state.entry(port: green)?.instance.processStartTicks == started.processStartTicks)
                #expect(state.entry(port: blue) == AppState.Entry(previous, role: .warm))
                #expect(lab.runningVersions() == ["1.0", "2.0"])
                #expect(await lab.eventuallyServesOnly("2.0"))
                // A second pass finds nothing more to do.
                #expect(try await InstanceReconciler(parts: parts).reconcile(app) == [])
            }
        }

        @Test("a canary step left behind: every request back to the stable release, the canary stopped")
        func canaryStepLeftBehind() async throws {
            try await RolloutLab.with(canary: true) { lab in
                let (blue, green) = lab.slots()
                let app = lab.app(strategy: .canary(blue: blue, green: green, plan: CanaryPlan()))
                try lab.startNginx(for: app)
                let parts = lab.parts()
                let (v1, v2) = (try await lab.release("1.0"), try await lab.release("2.0"))
                _ = try await BlueGreenRollout(parts: parts).rollOut(v1, app: app, progress: lab.progress(app: app).0)
                // What a deployment that died during its 50 % step leaves behind.
                let log = MemoryDeploymentLog()
                let started = try await parts.supervisor.start(v2, app: app, port: green, slot: "green", log: log)
                try await lab.state.update(app: lab.appName) { $0.set(started, role: .starting) }
                try await parts.health.waitUntilHealthy(port: green, health: app.health, log: log) { await parts.supervisor.isRunning(started) }
                try await parts.traffic.route(to: [blue, green], canaryPercent: 50, app: app, expectVersion: "2.0", log: log)

                let notes = try await InstanceReconciler(parts: parts).reconcile(app)

                #expect(notes.first?.hasPrefix("nginx still split requests for a canary step") == true, "\(notes)")
                #expect(notes.contains("stopping half-started 2.0 on port \(green)"), "\(notes)")
                #expect(NginxTrafficSwitch().currentPorts(app: app) == [blue])
                #expect(lab.runningVersions() == ["1.0"])
                #expect(await lab.eventuallyServesOnly("1.0"))
            }
        }
    }
}
