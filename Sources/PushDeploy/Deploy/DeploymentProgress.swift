/// What a running deployment reports: its phases, what it learned (commit, version), and its log.
///
/// Every call rewrites the deployment's record, so the history always shows the phase in progress.
public struct DeploymentProgress: Sendable {
    public let app: String
    public let id: Int
    /// A deployment ships new code; a rollback goes back to a stored release (no watch window, `after_rollback` hook).
    public let kind: DeploymentKind
    public let log: any DeploymentLog
    private let enterPhase: @Sendable (DeploymentStatus) async throws -> Void
    private let change: @Sendable (@Sendable (inout Deployment) -> Void) async throws -> Void

    public init(app: String, id: Int, kind: DeploymentKind = .deploy, log: any DeploymentLog,
                enterPhase: @escaping @Sendable (DeploymentStatus) async throws -> Void,
                change: @escaping @Sendable (@Sendable (inout Deployment) -> Void) async throws -> Void) {
        self.app = app
        self.id = id
        self.kind = kind
        self.log = log
        self.enterPhase = enterPhase
        self.change = change
    }

    /// Starts a phase; the previous one ends now. Entering `switching` throws if the deployment was cancelled.
    public func enter(_ phase: DeploymentStatus) async throws {
        log.line("phase: \(phase.rawValue)")
        try await enterPhase(phase)
    }

    /// Changes the record (commit, version, ...) and saves it.
    public func record(_ update: @escaping @Sendable (inout Deployment) -> Void) async throws {
        try await change(update)
    }

    /// A progress that keeps the record in memory, for unit tests of steps.
    public static func inMemory(_ deployment: Deployment, log: any DeploymentLog = MemoryDeploymentLog()) -> (DeploymentProgress, MemoryDeploymentRecord) {
        let holder = MemoryDeploymentRecord(deployment)
        let progress = DeploymentProgress(app: deployment.app, id: deployment.id, kind: deployment.kind, log: log,
                                          enterPhase: { phase in await holder.change { $0.enter(phase) } },
                                          change: { update in await holder.change(update) })
        return (progress, holder)
    }
}

/// A deployment record held in memory, for unit tests.
public actor MemoryDeploymentRecord {
    public private(set) var deployment: Deployment

    public init(_ deployment: Deployment) { self.deployment = deployment }

    public func change(_ update: (inout Deployment) -> Void) { update(&deployment) }
}
