import Foundation

/// The core of a running pushdeploy: the history and one queue per app.
public struct DeployService: Sendable {
    public let config: Config
    public let store: DeploymentStore
    /// What runs and what one can roll back to; nil in tests that run no instances.
    public let rollbackTargets: HistoryRollbackTargets?
    private let queues: [String: DeployQueue]

    /// Makes the queues; call ``open()`` before taking requests.
    public init(config: Config, store: DeploymentStore? = nil, runner: any DeploymentRunner,
                rollbackTargets: HistoryRollbackTargets? = nil) {
        self.config = config
        let store = store ?? DeploymentStore(stateDirectory: config.stateDirectory)
        self.store = store
        self.rollbackTargets = rollbackTargets ?? (runner as? Deployer)?.rollbackTargets
        var queues: [String: DeployQueue] = [:]
        for app in config.apps {
            queues[app.name] = DeployQueue(app: app, store: store, runner: runner)
        }
        self.queues = queues
    }

    /// Reads the history and closes what a previous run left unfinished as `interrupted`.
    @discardableResult
    public func open() async throws -> [Deployment] {
        try await store.open(apps: config.apps.map(\.name))
    }

    /// The queue of an app.
    public func queue(_ app: String) throws(DeployError) -> DeployQueue {
        guard let queue = queues[app] else { throw .unknownApp(app) }
        return queue
    }

    /// Queues a deployment of `app`.
    public func deploy(app: String, trigger: Trigger) async throws -> (deployment: Deployment, isNew: Bool) {
        try await queue(app).submit(trigger)
    }

    /// Queues a rollback of `app` at the front.
    public func rollback(app: String, to target: String?, trigger: Trigger) async throws -> Deployment {
        try await queue(app).rollback(to: target, trigger: trigger)
    }

    /// What `/status` shows for an app.
    public func status(app: String) async throws -> AppStatus {
        let queue = try queue(app)
        let recent = try await store.list(app: app, limit: 200)
        let instances = try await rollbackTargets?.state?.state(app: app)
        let liveVersion = instances?.liveVersion ?? recent.first { $0.status == .succeeded }?.version
        let live = recent.first { $0.status == .succeeded && $0.version == liveVersion } ?? recent.first { $0.status == .succeeded }
        return AppStatus(app: app, strategy: queue.app.strategy.name,
                         live: live.map { AppStatus.Live(version: liveVersion ?? $0.version, commit: $0.commit, deployment: $0.id, since: $0.finishedAt) },
                         instances: instances?.entries.map { AppStatus.Slot(port: $0.instance.port, slot: $0.instance.slot, role: $0.role.rawValue,
                                                                            version: $0.instance.version, pid: $0.instance.pid) } ?? [],
                         rollbackCandidates: await rollbackTargets?.candidates(app: app).map(\.version) ?? [],
                         queue: await queue.snapshot(), lastDeployment: recent.first)
    }

    /// Waits until every queue is idle (for tests and the demo).
    public func waitUntilIdle() async {
        for queue in queues.values { await queue.waitUntilIdle() }
    }

    /// Cancels what runs (recorded `interrupted`) and waits for it.
    public func shutdown() async {
        await withTaskGroup(of: Void.self) { group in
            for queue in queues.values { group.addTask { await queue.shutdown() } }
        }
    }
}

/// An app's state as `/status` answers it.
public struct AppStatus: Sendable, Codable, Equatable {
    public struct Live: Sendable, Codable, Equatable {
        public var version: String?
        public var commit: String?
        public var deployment: Int
        public var since: Date?
    }

    /// One instance from `state.json`.
    public struct Slot: Sendable, Codable, Equatable {
        public var port: Int
        public var slot: String
        /// `live`, `warm` or `starting`.
        public var role: String
        public var version: String
        public var pid: Int32?
    }

    public var app: String
    public var strategy: String
    public var live: Live?
    /// What runs, port by port.
    public var instances: [Slot]
    /// Stored releases one can roll back to, newest first.
    public var rollbackCandidates: [String]
    public var queue: QueueSnapshot
    public var lastDeployment: Deployment?
}
