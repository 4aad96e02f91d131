import Foundation
@testable import PushDeploy

/// A fresh scratch folder per test, removed when the value goes away.
final class ScratchDirectory: Sendable {
    let path: String

    init() {
        path = NSTemporaryDirectory() + "pushdeploy-test-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes a file inside the folder and returns its path.
    @discardableResult
    func write(_ name: String, _ text: String) -> String {
        let file = "\(path)/\(name)"
        try! FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try! text.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }
}

/// An app config for unit tests, without YAML.
func testApp(_ name: String = "shop", cancelSuperseded: Bool = false, githubSecret: String? = "s3cret",
             url: String = "https://github.com/acme/shop.git", branch: String = "main", ports: (Int, Int) = (8081, 8082)) -> AppConfig {
    var build = BuildConfig()
    build.cancelSuperseded = cancelSuperseded
    return AppConfig(name: name, repository: RepositoryConfig(url: url, branch: branch),
                     webhooks: WebhookSecrets(github: githubSecret.map { Secret($0) }), build: build, run: RunConfig(),
                     strategy: .blueGreen(blue: ports.0, green: ports.1), health: HealthConfig(), watch: .seconds(30),
                     keepPreviousWarm: true, nginx: NginxConfig(includeFile: "/tmp/x.inc"), keepReleases: 5, hooks: LifecycleHooks())
}

/// A runner whose deployments wait at a gate the test opens, so the test decides when each one ends.
actor GatedRunner: DeploymentRunner {
    enum Step: Sendable { case succeed, fail(String), switchThenWait, watchThenWait }

    private var gates: [Int: CheckedContinuation<Step, Never>] = [:]
    private var started: [Int] = []
    private var startWaiters: [(Int, CheckedContinuation<Void, Never>)] = []

    /// Ids in the order their run began.
    var startedIDs: [Int] { started }

    nonisolated func run(_ deployment: Deployment, app: AppConfig, progress: DeploymentProgress) async throws -> RolloutOutcome {
        try await progress.enter(.fetching)
        let step = try await wait(deployment.id)
        switch step {
        case .succeed:
            return .live
        case let .fail(reason):
            throw TestFailure(reason: reason)
        case .switchThenWait:
            try await progress.enter(.switching)
            _ = try await wait(deployment.id)
            return .live
        case .watchThenWait:
            try await progress.enter(.switching)
            try await progress.enter(.watching)
            _ = try await wait(deployment.id)
            return .live
        }
    }

    private nonisolated func wait(_ id: Int) async throws -> Step {
        let step = await withTaskCancellationHandler {
            await self.park(id)
        } onCancel: {
            Task { await self.open(id, .fail("cancelled")) }
        }
        try Task.checkCancellation()
        return step
    }

    private func park(_ id: Int) async -> Step {
        started.append(id)
        for (index, waiter) in startWaiters.enumerated().reversed() where waiter.0 == id {
            startWaiters.remove(at: index)
            waiter.1.resume()
        }
        return await withCheckedContinuation { gates[id] = $0 }
    }

    /// Lets deployment `id` go on with `step`.
    func open(_ id: Int, _ step: Step = .succeed) {
        gates.removeValue(forKey: id)?.resume(returning: step)
    }

    /// Returns once deployment `id` waits at its gate.
    func waitUntilParked(_ id: Int) async {
        if gates[id] != nil { return }
        await withCheckedContinuation { startWaiters.append((id, $0)) }
        while gates[id] == nil { await Task.yield() }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var reason: String
    var description: String { reason }
}
