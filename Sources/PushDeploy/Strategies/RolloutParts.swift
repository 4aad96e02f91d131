/// The real parts a rollout strategy drives: instances, health, nginx, state, hooks.
public struct RolloutParts: Sendable {
    public var supervisor: any AppSupervisor
    public var health: any HealthChecker
    public var traffic: any TrafficSwitch
    public var state: AppStateStore
    public var releases: any ReleaseStore
    public var hooks: any RolloutHooks

    public init(supervisor: any AppSupervisor, health: any HealthChecker, traffic: any TrafficSwitch, state: AppStateStore,
                releases: any ReleaseStore, hooks: any RolloutHooks) {
        self.supervisor = supervisor
        self.health = health
        self.traffic = traffic
        self.state = state
        self.releases = releases
        self.hooks = hooks
    }
}

extension RolloutParts {
    /// Runs a hook that reports what already happened (after a switch or a rollback): its failure is logged, and
    /// changes nothing, since the traffic it reports on has moved already.
    func runReporting(_ hook: HookName, app: AppConfig, context: HookContext, log: any DeploymentLog) async {
        do {
            try await hooks.run(hook, app: app, context: context, log: log)
        } catch {
            log.line("\(hook.rawValue) hook failed (the switch stands): \(error)")
        }
    }
}

/// The lifecycle hooks a config can name.
public enum HookName: String, Sendable, CaseIterable {
    case beforeBuild = "before_build"
    case afterBuild = "after_build"
    case beforeSwitch = "before_switch"
    case afterSwitch = "after_switch"
    case afterRollback = "after_rollback"
    case onFailure = "on_failure"

    /// The command configured for this hook, if any.
    public func command(in hooks: LifecycleHooks) -> [String]? {
        switch self {
        case .beforeBuild: hooks.beforeBuild
        case .afterBuild: hooks.afterBuild
        case .beforeSwitch: hooks.beforeSwitch
        case .afterSwitch: hooks.afterSwitch
        case .afterRollback: hooks.afterRollback
        case .onFailure: hooks.onFailure
        }
    }
}

/// What a hook learns through its `DEPLOY_*` environment.
public struct HookContext: Sendable, Equatable {
    public var deploymentID: Int
    public var app: String
    public var version: String?
    public var commit: String?
    public var port: Int?
    public var slot: String?

    public init(deploymentID: Int, app: String, version: String? = nil, commit: String? = nil, port: Int? = nil, slot: String? = nil) {
        self.deploymentID = deploymentID
        self.app = app
        self.version = version
        self.commit = commit
        self.port = port
        self.slot = slot
    }

    /// The `DEPLOY_*` variables.
    public var environment: [String: String] {
        var environment = ["DEPLOY_ID": String(deploymentID), "DEPLOY_APP": app]
        environment["DEPLOY_VERSION"] = version
        environment["DEPLOY_COMMIT"] = commit
        environment["DEPLOY_PORT"] = port.map(String.init)
        environment["DEPLOY_SLOT"] = slot
        return environment
    }
}

/// Runs lifecycle hooks; a hook that fails throws.
public protocol RolloutHooks: Sendable {
    /// Runs hook `name` of `app` (nothing when it is not configured).
    func run(_ name: HookName, app: AppConfig, context: HookContext, log: any DeploymentLog) async throws
}

/// Hooks that do nothing, for tests of strategies that do not care about hooks.
public struct NoHooks: RolloutHooks {
    public init() {}
    public func run(_ name: HookName, app: AppConfig, context: HookContext, log: any DeploymentLog) async throws {}
}
