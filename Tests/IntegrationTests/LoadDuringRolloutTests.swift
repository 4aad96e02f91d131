import Foundation
import Synchronization
import Testing
@testable import PushDeploy

extension RolloutTests {
    /// The key claim: under steady load through nginx, a deployment, a rollback and a rolling deployment lose no request.
    @Suite("zero downtime under load")
    struct UnderLoad {
        @Test("blue-green deployment, then a hot rollback: every request through nginx answers 200")
        func blueGreenAndRollback() async throws {
            try await RolloutLab.with { lab in
                let (blue, green) = lab.slots()
                let app = lab.app(strategy: .blueGreen(blue: blue, green: green))
                try lab.startNginx(for: app)
                let rollout = StrategyRollout(parts: lab.parts())
                let (v1, v2) = (try await lab.release("1.0"), try await lab.release("2.0"))
                _ = try await rollout.rollOut(v1, app: app, progress: lab.progress(app: app).0)

                let load = try await NginxLoad.start(port: lab.nginx.port)
                let beforeDeploy = load.tally
                #expect(try await rollout.rollOut(v2, app: app, progress: lab.progress(app: app, id: 2).0) == .live)
                let afterDeploy = load.tally
                let rollback = DeploymentProgress.inMemory(
                    Deployment(id: 3, app: lab.appName, kind: .rollback, trigger: Trigger(source: .manual), strategy: "blue-green")).0
                #expect(try await rollout.rollOut(v1, app: app, progress: rollback) == .live)
                let afterRollback = load.tally
                try await load.waitForMore(than: afterRollback.answered, by: 50)
                let total = await load.stop()

                #expect(total.failures.isEmpty, "\(total.failures.count) failed requests: \(total.failures.prefix(5))")
                #expect(afterDeploy.answered - beforeDeploy.answered >= 50, "\(afterDeploy.answered - beforeDeploy.answered) requests during the deployment")
                // The flip takes about a tenth of a second: a couple of dozen requests fall into it.
                #expect(afterRollback.answered - afterDeploy.answered >= 10, "\(afterRollback.answered - afterDeploy.answered) requests during the rollback")
                // The load saw each release in turn, and only these.
                #expect(Set(total.versions.keys) == ["1.0", "2.0"])
                #expect(await lab.eventuallyServesOnly("1.0"))
            }
        }

        @Test("rolling deployment of three instances: every request through nginx answers 200")
        func rolling() async throws {
            try await RolloutLab.with(rolling: true) { lab in
                let app = lab.app(strategy: .rolling(instances: lab.ports(3)))
                try lab.startNginx(for: app)
                let rollout = StrategyRollout(parts: lab.parts())
                let (v1, v2) = (try await lab.release("1.0"), try await lab.release("2.0"))
                _ = try await rollout.rollOut(v1, app: app, progress: lab.progress(app: app).0)

                let load = try await NginxLoad.start(port: lab.nginx.port)
                let before = load.tally
                #expect(try await rollout.rollOut(v2, app: app, progress: lab.progress(app: app, id: 2).0) == .live)
                let after = load.tally
                try await load.waitForMore(than: after.answered, by: 50)
                let total = await load.stop()

                #expect(total.failures.isEmpty, "\(total.failures.count) failed requests: \(total.failures.prefix(5))")
                #expect(after.answered - before.answered >= 50, "\(after.answered - before.answered) requests during the rolling deployment")
                #expect(Set(total.versions.keys) == ["1.0", "2.0"])
                #expect(await lab.eventuallyServesOnly("2.0"))
            }
        }
    }
}

/// Steady GETs of `/` through nginx, each on a new connection (`Connection: close`), counting every answer and failure.
///
/// Bounded in time and count, and paced, so a test that forgets to stop it does not flood the machine or run out of ports.
final class NginxLoad: Sendable {
    struct Tally: Sendable {
        /// Requests that got an answer, whatever its status.
        var answered = 0
        /// One line per request that failed: a non-200 answer, a connect error or a timeout.
        var failures: [String] = []
        /// How many 200 answers each version gave.
        var versions: [String: Int] = [:]
        var lastVersion: String?
    }

    private let counts = Mutex(Tally())
    private let loops = Mutex<Task<Void, Never>?>(nil)

    /// Starts `clients` loops against nginx on `port` and returns once the first answer came back.
    static func start(port: Int, clients: Int = 4, pause: Duration = .milliseconds(2), limit: Duration = .seconds(90),
                      maxRequests: Int = 100_000) async throws -> NginxLoad {
        let load = NginxLoad()
        let deadline = ContinuousClock.now + limit
        let task = Task {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<clients {
                    group.addTask {
                        while !Task.isCancelled, ContinuousClock.now < deadline, load.tally.answered + load.tally.failures.count < maxRequests {
                            await load.once(port: port)
                            try? await Task.sleep(for: pause)
                        }
                    }
                }
            }
        }
        load.loops.withLock { $0 = task }
        try await load.waitForMore(than: 0, by: 1)
        return load
    }

    /// What the loops counted so far.
    var tally: Tally { counts.withLock { $0 } }

    /// Waits until `by` more requests than `answered` were answered (up to 10 s).
    func waitForMore(than answered: Int, by more: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while tally.answered < answered + more {
            guard ContinuousClock.now < deadline else { throw LoadStalled(answered: tally.answered) }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Stops the loops and returns the final tally.
    func stop() async -> Tally {
        let task = loops.withLock { $0 }
        task?.cancel()
        await task?.value
        return tally
    }

    private func once(port: Int) async {
        do {
            let (status, body) = try await HTTPProbe.get(host: "127.0.0.1", port: port, path: "/", timeout: .seconds(5))
            let text = body.trimmingCharacters(in: .whitespacesAndNewlines)
            // The demo app answers `demo-app <version>`; an app that names no version is counted under its text.
            let version = text.hasPrefix("demo-app ") ? text.split(separator: " ").dropFirst().first.map(String.init) : (text.isEmpty ? nil : text)
            counts.withLock { tally in
                tally.answered += 1
                if status == 200, let version {
                    tally.versions[version, default: 0] += 1
                    tally.lastVersion = version
                } else {
                    tally.failures.append("status \(status): \(body.prefix(200))")
                }
            }
        } catch {
            // A request cut short by stop() is the test's doing, not a failure.
            if Task.isCancelled { return }
            counts.withLock { $0.failures.append("\(error)") }
        }
    }

    struct LoadStalled: Error, CustomStringConvertible {
        var answered: Int
        var description: String { "the load through nginx stalled at \(answered) answered requests" }
    }
}
