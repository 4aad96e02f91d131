import Foundation

/// Runs an app's lifecycle hooks as argument lists (no shell), with the `DEPLOY_*` environment and the hooks' timeout.
///
/// A hook sees ``ChildEnvironment`` (never pushdeploy's own environment) plus `DEPLOY_ID`, `DEPLOY_APP`, `DEPLOY_VERSION`,
/// `DEPLOY_COMMIT`, `DEPLOY_PORT` and `DEPLOY_SLOT`; the ones not known at that point (no version
/// before the build, no port around a rolling deployment) are set to the empty string, so a
/// script with `set -u` still runs and an inherited value never leaks in. Hooks run in
/// `workingDirectory`, the folder of `pushdeploy.yml` (where relative hook paths were resolved
/// from), so a hook finds its neighbours the way it did when the operator tried it by hand.
/// Their output goes to the deployment log as it comes. Whether a failure stops the deployment
/// is the caller's choice: this only reports it as a ``HookError``.
public struct LifecycleHookRunner: RolloutHooks {
    public var runner: any CommandRunner
    /// The folder hooks run in; nil means pushdeploy's own working directory.
    public var workingDirectory: String?

    public init(runner: any CommandRunner = SubprocessCommandRunner(), workingDirectory: String?) {
        self.runner = runner
        self.workingDirectory = workingDirectory
    }

    /// Runs hook `name` when the app configures it; throws ``HookError`` when it fails or runs past `hooks.timeout`.
    public func run(_ name: HookName, app: AppConfig, context: HookContext, log: any DeploymentLog) async throws {
        guard let arguments = name.command(in: app.hooks) else { return }
        let command = Command(arguments, workingDirectory: workingDirectory, environment: Self.environment(context))
        let timeout = app.hooks.timeout
        log.line("hook \(name.rawValue): \(command) (timeout \(DurationParser.format(timeout)))")
        let result: CommandResult
        do {
            result = try await runner.run(command, log: log, timeout: timeout)
        } catch let error as CommandError {
            switch error {
            case .emptyCommand, .failed:
                throw HookError.launchFailed(hook: name.rawValue, command: command.description, reason: "\(error)")
            case let .launchFailed(_, reason):
                throw HookError.launchFailed(hook: name.rawValue, command: command.description, reason: reason)
            case let .timedOut(_, after, tail):
                throw HookError.timedOut(hook: name.rawValue, after: after, outputTail: tail)
            }
        }
        guard result.status.isSuccess else {
            throw HookError.failed(hook: name.rawValue, status: result.status, outputTail: result.outputTail)
        }
        log.line("hook \(name.rawValue) finished in \(String(format: "%.1f", result.seconds)) s")
    }

    /// All six `DEPLOY_*` variables, empty where the context does not know the value.
    static func environment(_ context: HookContext) -> [String: String] {
        let names = ["DEPLOY_ID", "DEPLOY_APP", "DEPLOY_VERSION", "DEPLOY_COMMIT", "DEPLOY_PORT", "DEPLOY_SLOT"]
        var environment = Dictionary(uniqueKeysWithValues: names.map { ($0, "") })
        environment.merge(context.environment) { $1 }
        return environment
    }
}

/// Why a lifecycle hook did not succeed.
public enum HookError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The hook ran and exited unsuccessfully.
    case failed(hook: String, status: CommandStatus, outputTail: [String])
    /// The hook ran past the hooks' timeout; its process tree was ended.
    case timedOut(hook: String, after: Duration, outputTail: [String])
    /// The hook could not be started (not found, not executable).
    case launchFailed(hook: String, command: String, reason: String)

    public var description: String {
        switch self {
        case let .failed(hook, status, tail):
            "\(hook) hook failed with \(status)" + CommandError.tailText(tail)
        case let .timedOut(hook, after, tail):
            "\(hook) hook timed out after \(DurationParser.format(after)) and was stopped" + CommandError.tailText(tail)
        case let .launchFailed(hook, command, reason):
            "\(hook) hook could not start (\(command)): \(reason)"
        }
    }
}
