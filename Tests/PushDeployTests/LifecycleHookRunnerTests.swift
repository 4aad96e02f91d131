import Foundation
import Testing
@testable import PushDeploy

/// Real `/bin/sh` hooks through the real command runner.
@Suite("lifecycle hooks")
struct LifecycleHookRunnerTests {
    private let context = HookContext(deploymentID: 42, app: "shop", version: "1.0.1-20250101", commit: String(repeating: "a", count: 40),
                                      port: 8082, slot: "green")

    @Test("a hook sees the DEPLOY_* variables and pushdeploy's environment, runs in the config folder, and its output reaches the log")
    func environmentAndOutput() async throws {
        let folder = HookFolder()
        let app = hookApp(beforeSwitch: ["/bin/sh", "-c",
                                         "echo \"$DEPLOY_ID $DEPLOY_APP $DEPLOY_VERSION $DEPLOY_COMMIT $DEPLOY_PORT $DEPLOY_SLOT\"; pwd; echo \"path=${PATH:+set}\""])
        let log = MemoryDeploymentLog()
        try await LifecycleHookRunner(workingDirectory: folder.path).run(.beforeSwitch, app: app, context: context, log: log)
        #expect(log.text.contains("42 shop 1.0.1-20250101 \(String(repeating: "a", count: 40)) 8082 green\n"))
        #expect(log.text.contains("\n\(folder.resolvedPath)\n"))
        #expect(log.text.contains("path=set\n"))
        #expect(log.text.contains("hook before_switch: /bin/sh -c"))
        #expect(log.text.contains("hook before_switch finished in"))
    }

    @Test("variables the context does not know are empty, so set -u scripts still run")
    func unknownValuesAreEmpty() async throws {
        let app = hookApp(beforeBuild: ["/bin/sh", "-c", "set -u; echo \"[$DEPLOY_VERSION][$DEPLOY_PORT][$DEPLOY_SLOT]\""])
        let log = MemoryDeploymentLog()
        try await LifecycleHookRunner(workingDirectory: nil)
            .run(.beforeBuild, app: app, context: HookContext(deploymentID: 7, app: "shop", commit: "abc"), log: log)
        #expect(log.text.contains("[][][]\n"))
    }

    @Test("a non-zero exit throws failed with the status and the last output")
    func failure() async throws {
        let app = hookApp(beforeSwitch: ["/bin/sh", "-c", "echo smoke test for $DEPLOY_VERSION failed; exit 3"])
        let error = await #expect(throws: HookError.self) {
            try await LifecycleHookRunner(workingDirectory: nil).run(.beforeSwitch, app: app, context: context, log: MemoryDeploymentLog())
        }
        #expect(error == .failed(hook: "before_switch", status: .exited(3), outputTail: ["smoke test for 1.0.1-20250101 failed"]))
        #expect("\(error!)".contains("before_switch hook failed with exit code 3"))
    }

    @Test("a hook past the timeout is stopped and throws timedOut")
    func timeout() async throws {
        var app = hookApp(afterSwitch: ["/bin/sh", "-c", "echo started; exec sleep 30"])
        app.hooks.timeout = .milliseconds(300)
        let started = ContinuousClock.now
        let error = await #expect(throws: HookError.self) {
            try await LifecycleHookRunner(runner: SubprocessCommandRunner(gracePeriod: .milliseconds(200)), workingDirectory: nil)
                .run(.afterSwitch, app: app, context: context, log: MemoryDeploymentLog())
        }
        #expect(error == .timedOut(hook: "after_switch", after: .milliseconds(300), outputTail: ["started"]))
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    @Test("a hook that cannot start throws launchFailed; a hook that is not configured does nothing")
    func missingProgramAndMissingHook() async throws {
        let app = hookApp(onFailure: ["/nonexistent/notify.sh"])
        let error = await #expect(throws: HookError.self) {
            try await LifecycleHookRunner(workingDirectory: nil).run(.onFailure, app: app, context: context, log: MemoryDeploymentLog())
        }
        guard case .launchFailed(hook: "on_failure", command: "/nonexistent/notify.sh", _) = error else {
            Issue.record("expected launchFailed, got \(String(describing: error))")
            return
        }
        let runner = MemoryCommandRunner()
        let log = MemoryDeploymentLog()
        for name in HookName.allCases where name != .onFailure {
            try await LifecycleHookRunner(runner: runner, workingDirectory: nil).run(name, app: app, context: context, log: log)
        }
        #expect(await runner.commands.isEmpty)
        #expect(log.text.isEmpty)
    }

    @Test("each hook name runs its own command with the hooks' timeout")
    func namesAndTimeout() async throws {
        let runner = MemoryCommandRunner()
        var app = hookApp(beforeBuild: ["b1"], afterBuild: ["b2"], beforeSwitch: ["s1"], afterSwitch: ["s2"], afterRollback: ["r"],
                          onFailure: ["f"])
        app.hooks.timeout = .seconds(9)
        for name in HookName.allCases {
            try await LifecycleHookRunner(runner: runner, workingDirectory: "/srv").run(name, app: app, context: context, log: MemoryDeploymentLog())
        }
        let commands = await runner.commands
        #expect(commands.map(\.arguments) == [["b1"], ["b2"], ["s1"], ["s2"], ["r"], ["f"]])
        #expect(commands.allSatisfy { $0.workingDirectory == "/srv" && $0.environment["DEPLOY_SLOT"] == "green" })
    }
}

/// A scratch folder for a hook to run in, removed afterwards.
private final class HookFolder {
    let path = NSTemporaryDirectory() + "pushdeploy-hooks-" + UUID().uuidString

    init() { try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// The path as `pwd` prints it (the temporary folder may sit behind a symlink).
    var resolvedPath: String { URL(fileURLWithPath: path).resolvingSymlinksInPath().path }
}

private func hookApp(beforeBuild: [String]? = nil, afterBuild: [String]? = nil, beforeSwitch: [String]? = nil, afterSwitch: [String]? = nil,
                     afterRollback: [String]? = nil, onFailure: [String]? = nil) -> AppConfig {
    AppConfig(name: "shop", repository: RepositoryConfig(url: "/unused"), webhooks: WebhookSecrets(), build: BuildConfig(), run: RunConfig(),
              strategy: .blueGreen(blue: 8081, green: 8082), health: HealthConfig(), watch: .zero, keepPreviousWarm: true, nginx: nil,
              keepReleases: 5,
              hooks: LifecycleHooks(beforeBuild: beforeBuild, afterBuild: afterBuild, beforeSwitch: beforeSwitch, afterSwitch: afterSwitch,
                                    afterRollback: afterRollback, onFailure: onFailure))
}
