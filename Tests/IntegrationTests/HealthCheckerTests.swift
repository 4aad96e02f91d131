import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import PushDeploy

/// `HTTPHealthChecker` and `HTTPProbe` against the real demo app and against sockets that misbehave.
@Suite(.serialized)
struct HealthCheckerTests {
    @Test("a slow start (--startup-delay=2s) turns healthy; a single probe agrees")
    func slowStartTurnsHealthy() async throws {
        let lab = try SupervisorLab()
        defer { lab.tearDown() }
        let app = lab.app(command: SupervisorLab.demoCommand + ["--startup-delay=2s"])
        let port = Integration.freePort()
        let log = MemoryDeploymentLog()
        let instance = try await lab.start(try await lab.demoRelease("2.0.0-h1"), app: app, port: port, slot: "blue", log: log)
        let checker = HTTPHealthChecker()
        #expect(await !checker.isHealthy(port: port, health: app.health))

        let waited = try await ContinuousClock().measure {
            try await checker.waitUntilHealthy(port: port, health: app.health, log: log) { await lab.supervisor.isRunning(instance) }
        }
        #expect(waited >= .seconds(1.5))
        #expect(await checker.isHealthy(port: port, health: app.health))
        let answer = try await HTTPProbe.get(url: "http://localhost:\(port)/actuator/health?probe=1", timeout: .seconds(2))
        #expect(answer.status == 200 && answer.body == #"{"status":"UP"}"#)
        #expect(log.text.contains("waiting for http://127.0.0.1:\(port)/actuator/health to answer 200 with \"UP\""))
        #expect(log.text.contains("port \(port) is healthy after"))
    }

    @Test("--health=down times out after startup_timeout with the last status and body")
    func unhealthyTimesOut() async throws {
        let lab = try SupervisorLab()
        defer { lab.tearDown() }
        var health = lab.health
        health.startupTimeout = .seconds(6)
        let app = lab.app(command: SupervisorLab.demoCommand + ["--health=down"], health: health)
        let port = Integration.freePort()
        let instance = try await lab.start(try await lab.demoRelease("2.0.0-h2"), app: app, port: port, slot: "blue", log: MemoryDeploymentLog())
        let error = await #expect(throws: HealthError.self) {
            try await HTTPHealthChecker().waitUntilHealthy(port: port, health: health, log: MemoryDeploymentLog()) {
                await lab.supervisor.isRunning(instance)
            }
        }
        #expect(error == .timedOut(after: .seconds(6), lastStatus: 503, lastError: "expected status 200, body: {\"status\":\"DOWN\"}"))
        #expect(await lab.supervisor.isRunning(instance))
    }

    @Test("health fails at once when the process exits: the JVM cannot bind its port")
    func failsWhenJVMExits() async throws {
        let lab = try SupervisorLab()
        defer { lab.tearDown() }
        let taken = try SupervisorLab.Listener()
        // The instance is meant for `port`, but the app is told to bind a port that is taken, so it dies during start-up
        // (after a second, so that it is the health check, not the start, that sees it go).
        let app = lab.app(command: Array(SupervisorLab.demoCommand.dropLast(2)) + ["--server.port=\(taken.port)", "--startup-delay=1s"])
        let port = Integration.freePort()
        let instance = try await lab.start(try await lab.demoRelease("2.0.0-h3"), app: app, port: port, slot: "blue", log: MemoryDeploymentLog())
        let clock = ContinuousClock()
        let started = clock.now
        await #expect(throws: HealthError.processExited(port: port, lastStatus: nil, lastError: "connect: Connection refused")) {
            try await HTTPHealthChecker().waitUntilHealthy(port: port, health: lab.health, log: MemoryDeploymentLog()) {
                await lab.supervisor.isRunning(instance)
            }
        }
        #expect(clock.now - started < .seconds(30))  // far below startup_timeout (60 s)
        let appLog = try await lab.waitForLog(instance, containing: "BindException")
        #expect(appLog.contains("Address already in use"))
    }

    @Test("health fails at once when a run command exits 1")
    func failsWhenCommandExits() async throws {
        let lab = try SupervisorLab()
        defer { lab.tearDown() }
        let app = lab.app(command: ["bash", "-c", "sleep 0.5; exit 1"])
        let port = Integration.freePort()
        let instance = try await lab.start(try lab.plainRelease("2.0.0-h4"), app: app, port: port, slot: "blue", log: MemoryDeploymentLog())
        let waited = await ContinuousClock().measure {
            await #expect(throws: HealthError.processExited(port: port, lastStatus: nil, lastError: "connect: Connection refused")) {
                try await HTTPHealthChecker().waitUntilHealthy(port: port, health: lab.health, log: MemoryDeploymentLog()) {
                    await lab.supervisor.isRunning(instance)
                }
            }
        }
        #expect(waited < .seconds(3))
    }

    @Test("cancelling the task ends the wait promptly, also in the middle of a hung request")
    func cancellation() async throws {
        let silent = try SupervisorLab.Listener()  // accepts connections (backlog) and never answers
        var health = HealthConfig(interval: .seconds(5), startupTimeout: .seconds(60))
        health.path = "/actuator/health"
        let task = Task {
            try await HTTPHealthChecker(requestTimeout: .seconds(30)).waitUntilHealthy(port: silent.port, health: health, log: MemoryDeploymentLog()) { true }
        }
        try await Task.sleep(for: .milliseconds(300))
        let clock = ContinuousClock()
        let cancelled = clock.now
        task.cancel()
        let result = await task.result
        #expect(clock.now - cancelled < .seconds(1))
        guard case .failure(let error) = result else { Issue.record("the wait did not fail"); return }
        #expect(error is CancellationError)
    }

    @Test("a probe times out on a port that accepts but never answers, and reports a refused connection")
    func probeFailures() async throws {
        let silent = try SupervisorLab.Listener()
        let clock = ContinuousClock()
        let started = clock.now
        await #expect(throws: HealthError.request(url: "http://127.0.0.1:\(silent.port)/x", reason: "timed out after 300ms waiting for the answer")) {
            try await HTTPProbe.get(host: "127.0.0.1", port: silent.port, path: "/x", timeout: .milliseconds(300))
        }
        #expect(clock.now - started < .seconds(1))
        let closed = Integration.freePort()
        await #expect(throws: HealthError.request(url: "http://localhost:\(closed)/", reason: "connect: Connection refused")) {
            try await HTTPProbe.get(host: "localhost", port: closed, path: "/", timeout: .seconds(1))
        }
    }
}

/// The in-memory doubles the strategy tests use.
struct MemoryDoublesTests {
    @Test("the memory supervisor and health checker follow what a test says")
    func memoryDoubles() async throws {
        let supervisor = MemoryAppSupervisor()
        let checker = MemoryHealthChecker()
        let lab = try SupervisorLab()
        defer { lab.tearDown() }
        let app = lab.app(command: ["true"])
        let release = Release(app: "demo", version: "1", commit: "c", builtAt: Date(), buildSeconds: 0, sha256: "")
        let log = MemoryDeploymentLog()
        let blue = try await supervisor.start(release, app: app, port: 8081, slot: "blue", log: log)
        try await checker.waitUntilHealthy(port: 8081, health: app.health, log: log) { await supervisor.isRunning(blue) }
        await checker.set(.unhealthy, port: 8082)
        let green = try await supervisor.start(release, app: app, port: 8082, slot: "green", log: log)
        await #expect(throws: HealthError.self) {
            try await checker.waitUntilHealthy(port: 8082, health: app.health, log: log) { await supervisor.isRunning(green) }
        }
        await supervisor.crash(port: 8081)
        await #expect(throws: HealthError.processExited(port: 8081, lastStatus: nil, lastError: "connect: Connection refused")) {
            try await checker.waitUntilHealthy(port: 8081, health: app.health, log: log) { await supervisor.isRunning(blue) }
        }
        #expect(await supervisor.adopt([blue, green]) == [green])
        try await supervisor.stop(green, app: app, log: log)
        #expect(await supervisor.runningPorts.isEmpty)
        #expect(await supervisor.events == ["start 1 on 8081", "start 1 on 8082", "crash 1 on 8081", "stop 1 on 8082"])
        #expect(await checker.waits == [8081, 8082, 8081])
    }
}
