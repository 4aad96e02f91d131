import Foundation
import Logging

/// The core of a running pushdeploy: the history and one queue per app.
public struct DeployService: Sendable {
    public let config: Config
    public let history: any DeploymentHistory
    /// What runs and what one can roll back to; nil in tests that run no instances.
    public let rollbackTargets: HistoryRollbackTargets?
    /// Makes the recorded instances agree with what runs and what nginx routes to; nil in tests that run none.
    public let reconciler: InstanceReconciler?
    /// Keeps the live and warm instances serving after a deployment; nil in tests that run none.
    public let supervision: InstanceSupervision?
    private let queues: [String: DeployQueue]
    /// What `GET /metrics` answers.
    public let metrics = DeploymentMetrics()

    /// Makes the queues; call ``open()`` before taking requests. `parts`: the instances, nginx and state the
    /// service reconciles at start-up and supervises afterwards.
    public init(config: Config, history: (any DeploymentHistory)? = nil, runner: any DeploymentRunner,
                rollbackTargets: HistoryRollbackTargets? = nil, parts: RolloutParts? = nil, notifier: DeploymentNotifier? = nil) {
        self.config = config
        let history = history ?? FileDeploymentHistory(stateDirectory: config.stateDirectory)
        self.history = history
        self.rollbackTargets = rollbackTargets
        self.reconciler = parts.map(InstanceReconciler.init)
        var queues: [String: DeployQueue] = [:]
        for app in config.apps {
            queues[app.name] = DeployQueue(app: app, history: history, runner: runner, metrics: metrics, notifier: notifier)
        }
        self.queues = queues
        supervision = parts.map { [metrics] in
            InstanceSupervision(apps: config.apps, parts: $0, history: history, queues: queues, metrics: metrics, notifier: notifier)
        }
    }

    /// The production service for `config`: history files, libgit2, Gradle, detached instances or systemd, nginx.
    /// `serve` and `demo` both start from here.
    public static func standard(config: Config) -> DeployService {
        let history = FileDeploymentHistory(stateDirectory: config.stateDirectory)
        let parts = RolloutParts.standard(config: config, releases: FileReleaseStore(stateDirectory: config.stateDirectory))
        let deployer = Deployer.standard(config: config, history: history, parts: parts)
        let logger = Logger(label: "pushdeploy.notify")
        let notifier = DeploymentNotifier(dashboardURL: config.publicURL ?? "http://\(config.listen.host):\(config.listen.port)/") { problem in
            logger.warning("\(problem)")
        }
        return DeployService(config: config, history: history, runner: deployer, rollbackTargets: deployer.rollbackTargets, parts: parts,
                             notifier: notifier)
    }

    /// Reads the history and closes what a previous run left unfinished as `interrupted`.
    @discardableResult
    public func open() async throws -> [Deployment] {
        try await history.open(apps: config.apps.map(AppHistorySettings.init))
    }

    /// Before the first request: re-adopts what still runs, stops what a killed deployment half-started, and
    /// stops instances nobody recorded. Returns one line per change, by app; an app that fails is reported, not fatal.
    public func reconcileInstances() async -> [(app: String, note: String)] {
        guard let reconciler else { return [] }
        var notes: [(app: String, note: String)] = []
        for app in config.apps {
            do {
                for note in try await reconciler.reconcile(app) { notes.append((app.name, note)) }
            } catch {
                notes.append((app.name, "could not reconcile the running instances with nginx: \(error)"))
            }
        }
        return notes
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

    /// Queues a rollback of `app` at the front; a `target` that names neither a deployment of the app nor a stored
    /// version is refused here, before anything is queued.
    public func rollback(app: String, to target: String?, trigger: Trigger) async throws -> Deployment {
        let queue = try queue(app)
        if let target { try await checkRollbackTarget(target, app: app) }
        return try await queue.rollback(to: target, trigger: trigger)
    }

    private func checkRollbackTarget(_ target: String, app: String) async throws {
        func refuse(_ reason: String) -> DeployError { .invalidRollbackTarget(app: app, target: target.capped(toUTF8: 100), reason: reason) }
        if let id = Int(target), id > 0, target.allSatisfy(\.isASCII) {
            guard await history.summaries(app: app).contains(where: { $0.id == id }) else {
                throw refuse("there is no deployment \(id)")
            }
            return
        }
        // A version is a folder name under releases/<app>: no path, no dots in front, nothing a shell or a path would read.
        do {
            try ReleaseStoreError.validate(target)
        } catch {
            throw refuse("neither a deployment id nor a version name (letters, digits, . _ + -, not starting with a dot)")
        }
        if let targets = rollbackTargets, (try? await targets.releases.release(app: app, version: target)) == nil {
            throw DeployError.invalidRollbackTarget(app: app, target: target, reason: "release \(target) is not stored (pruned or never built)",
                                                    available: await targets.candidates(app: app).map(\.version))
        }
    }

    /// What `/status` shows for an app.
    public func status(app: String) async throws -> AppStatus {
        let queue = try queue(app)
        let summaries = await history.summaries(app: app)
        let instances = try await rollbackTargets?.state?.state(app: app)
        let liveVersion = instances?.liveVersion ?? summaries.liveVersion
        let succeeded = summaries.filter { $0.status == .succeeded }
        let live = succeeded.last { $0.version == liveVersion } ?? succeeded.last
        // A recorded instance whose process is gone is reported `down`, never by its recorded role.
        var slots: [AppStatus.Slot] = []
        for entry in instances?.entries ?? [] {
            let running = await reconciler?.parts.supervisor.isRunning(entry.instance) ?? true
            slots.append(AppStatus.Slot(port: entry.instance.port, slot: entry.instance.slot, role: running ? entry.role.rawValue : "down",
                                        version: entry.instance.version, pid: entry.instance.pid, restarts: entry.restarts ?? 0))
        }
        var lastDeployment: Deployment?
        if let newest = summaries.last { lastDeployment = try await history.deployment(app: app, id: newest.id) }
        return AppStatus(app: app, strategy: queue.app.strategy.name,
                         live: live.map { AppStatus.Live(version: liveVersion ?? $0.version, commit: $0.commit, deployment: $0.id, since: $0.finishedAt) },
                         instances: slots,
                         rollbackCandidates: await rollbackTargets?.candidates(app: app).map(\.version) ?? [],
                         queue: await queue.snapshot(), lastDeployment: lastDeployment)
    }

    /// The metrics as Prometheus text, with the gauges read now: each app's queue depth and live release.
    public func metricsText() async -> String {
        for app in config.apps {
            guard let queue = queues[app.name] else { continue }
            let snapshot = await queue.snapshot()
            metrics.queueDepth(app: app.name, depth: (snapshot.running == nil ? 0 : 1) + snapshot.waiting.count)
            if let state = try? await rollbackTargets?.state?.state(app: app.name),
               let live = state.live.max(by: { $0.startedAt < $1.startedAt }) {
                metrics.live(app: app.name, version: live.version, commit: live.commit)
            }
        }
        return metrics.text()
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
        /// `live`, `warm` or `starting`; `down` when its process is gone.
        public var role: String
        public var version: String
        public var pid: Int32?
        /// Restarts by supervision since a deployment put it there.
        public var restarts: Int = 0
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
