/// Runs one deployment at a time for one app.
public protocol DeploymentRunner: Sendable {
    /// Carries a deployment through its phases; throwing fails it, a cancelled task ends it as cancelled.
    func run(_ deployment: Deployment, app: AppConfig, progress: DeploymentProgress) async throws -> RolloutOutcome
}

/// One app's deployments: one runs, at most one push waits, a rollback goes to the front.
///
/// A newer push replaces the waiting one (recorded `superseded`). A rollback cancels a running
/// deployment that has not switched traffic yet; past that point nothing cancels it.
public actor DeployQueue {
    public nonisolated let app: AppConfig
    private let history: any DeploymentHistory
    private let metrics: DeploymentMetrics?
    private let notifier: DeploymentNotifier?
    private let runner: any DeploymentRunner
    private var running: Running?
    private var waiting: Deployment?
    private var pendingRollback: Deployment?
    private var cancelReasons: [Int: (status: DeploymentStatus, reason: String)] = [:]
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []
    private var isShutDown = false
    /// Supervision is repairing an instance: a deployment waits before it starts one of its own.
    private var repairing = false
    private var repairWaiters: [CheckedContinuation<Void, Never>] = []

    private struct Running {
        var id: Int
        var kind: DeploymentKind
        var phase: DeploymentStatus
        var task: Task<Void, Never>?
    }

    public init(app: AppConfig, history: any DeploymentHistory, runner: any DeploymentRunner, metrics: DeploymentMetrics? = nil,
                notifier: DeploymentNotifier? = nil) {
        self.app = app
        self.history = history
        self.metrics = metrics
        self.notifier = notifier
        self.runner = runner
    }

    /// Records a push and queues it; a repeated delivery returns the first deployment with `isNew` false.
    /// Returns once the record is on disk.
    public func submit(_ trigger: Trigger) async throws -> (deployment: Deployment, isNew: Bool) {
        guard !isShutDown else { throw QueueError.shuttingDown }
        let (deployment, isNew) = try await history.create(app: app.name, kind: .deploy, trigger: trigger, strategy: app.strategy.name)
        guard isNew else { return (deployment, false) }
        guard !isShutDown else {
            let cancelled = try await history.update(app: app.name, id: deployment.id) {
                $0.finish(.cancelled, error: "pushdeploy was stopped before it started")
            }
            return (cancelled, true)
        }
        try await enqueue(deployment)
        return (try await history.deployment(app: app.name, id: deployment.id) ?? deployment, true)
    }

    private func enqueue(_ deployment: Deployment) async throws {
        if running == nil, pendingRollback == nil {
            start(deployment)
            return
        }
        let newest = [waiting?.id, running.flatMap { $0.kind == .deploy ? $0.id : nil }].compactMap { $0 }.max()
        if let newest, newest > deployment.id {
            // Recorded before a push that reached the queue first: the newer push stays, this one is superseded.
            try await history.update(app: app.name, id: deployment.id) {
                $0.supersededBy = newest
                $0.finish(.superseded, error: "superseded by deployment \(newest) before it started")
            }
            return
        }
        let replaced = waiting
        waiting = deployment
        if app.build.cancelSuperseded, let current = running, current.kind == .deploy,
           !current.phase.hasSwitchedTraffic, cancelReasons[current.id] == nil, pendingRollback == nil {
            cancelReasons[current.id] = (.superseded, "superseded by deployment \(deployment.id)")
            current.task?.cancel()
        }
        if let replaced {
            // No log file for it: the record says why.
            try await history.update(app: app.name, id: replaced.id) {
                $0.supersededBy = deployment.id
                $0.finish(.superseded, error: "superseded by deployment \(deployment.id) before it started")
            }
        }
    }

    /// Records a rollback and puts it at the front; it cancels a running deployment that has not switched traffic.
    public func rollback(to target: String?, trigger: Trigger) async throws -> Deployment {
        guard !isShutDown else { throw QueueError.shuttingDown }
        var (deployment, _) = try await history.create(app: app.name, kind: .rollback, trigger: trigger, strategy: app.strategy.name)
        if let target {
            deployment = try await history.update(app: app.name, id: deployment.id) { $0.rollbackTo = target }
        }
        if running == nil {
            start(deployment)
            return deployment
        }
        let replaced = pendingRollback
        pendingRollback = deployment
        if let current = running, current.kind == .deploy, cancelReasons[current.id] == nil {
            if !current.phase.hasSwitchedTraffic {
                cancelReasons[current.id] = (.cancelled, "cancelled by rollback \(deployment.id)")
                current.task?.cancel()
            } else if current.phase == .switching || current.phase == .watching {
                // Past the switch the rollback takes the release back: the watch is cut short (a switch in flight
                // finishes first), so the rollback starts at once rather than after the whole window.
                cancelReasons[current.id] = (.rolledBack, "rolled back by deployment \(deployment.id) during \(current.phase.rawValue)")
                if current.phase == .watching { current.task?.cancel() }
            }
        }
        if let replaced {
            let rollbackID = deployment.id
            try await history.update(app: app.name, id: replaced.id) {
                $0.supersededBy = rollbackID
                $0.finish(.superseded, error: "superseded by rollback \(rollbackID) before it started")
            }
        }
        return deployment
    }

    /// Runs `repair` while no deployment is touching instances, and holds any deployment at `starting` until it ends.
    /// Returns nil, running nothing, when a deployment is past its build or another repair runs: ask again later.
    public func whileInstancesAreFree<T: Sendable>(_ repair: @Sendable () async throws -> T) async rethrows -> T? {
        if repairing || isShutDown { return nil }
        if let current = running, ![.queued, .fetching, .building].contains(current.phase) { return nil }
        repairing = true
        defer {
            repairing = false
            let waiters = repairWaiters
            repairWaiters = []
            for waiter in waiters { waiter.resume() }
        }
        return try await repair()
    }

    /// What runs and what waits.
    public func snapshot() -> QueueSnapshot {
        QueueSnapshot(running: running.map { QueueSnapshot.Entry(id: $0.id, kind: $0.kind, phase: $0.phase) },
                      waiting: [pendingRollback, waiting].compactMap { $0 }.map { QueueSnapshot.Entry(id: $0.id, kind: $0.kind, phase: .queued) })
    }

    /// Returns when nothing runs or waits.
    public func waitUntilIdle() async {
        if running == nil, waiting == nil, pendingRollback == nil { return }
        await withCheckedContinuation { idleWaiters.append($0) }
    }

    /// Stops taking work, cancels what runs (recorded `interrupted`) and what waits, and waits for the end.
    public func shutdown() async {
        isShutDown = true
        for queued in [waiting, pendingRollback].compactMap({ $0 }) {
            _ = try? await history.update(app: app.name, id: queued.id) { $0.finish(.cancelled, error: "pushdeploy was stopped before it started") }
        }
        waiting = nil
        pendingRollback = nil
        if let current = running {
            if cancelReasons[current.id] == nil {
                cancelReasons[current.id] = (.interrupted, "pushdeploy was stopped during \(current.phase.rawValue)")
            }
            current.task?.cancel()
            await current.task?.value
        }
    }

    /// Runs a deployment.
    private func start(_ deployment: Deployment) {
        running = Running(id: deployment.id, kind: deployment.kind, phase: .queued, task: nil)
        let task = Task { await self.execute(deployment) }
        running?.task = task
    }

    private nonisolated func execute(_ deployment: Deployment) async {
        let id = deployment.id
        let log: any DeploymentLog = (try? await history.log(app: app.name, id: id)) ?? MemoryDeploymentLog()
        log.line("\(deployment.kind.rawValue) \(id) of \(app.name) started (trigger: \(deployment.trigger.source.rawValue))")
        notifier?.notify(.started, deployment: deployment, app: app)
        let progress = DeploymentProgress(
            app: app.name, id: id, kind: deployment.kind, log: log,
            enterPhase: { phase in try await self.enter(id, phase) },
            change: { update in try await self.history.update(app: self.app.name, id: id, update) })
        var status = DeploymentStatus.succeeded
        var reason: String?
        do {
            let current = try await history.deployment(app: app.name, id: id) ?? deployment
            if case let .rolledBack(why) = try await runner.run(current, app: app, progress: progress) {
                status = .rolledBack
                reason = why
            }
        } catch {
            if let cancelled = await takeCancelReason(id) {
                (status, reason) = (cancelled.status, cancelled.reason)
            } else if error is CancellationError {
                (status, reason) = (.cancelled, "cancelled")
            } else {
                (status, reason) = (.failed, "\(error)")
            }
        }
        log.line("\(deployment.kind.rawValue) \(id) \(status.rawValue)\(reason.map { ": \($0)" } ?? "")")
        do {
            let final = try await history.update(app: app.name, id: id) { [status, reason] in $0.finish(status, error: reason) }
            metrics?.finished(final)
            if let event = Self.event(for: final) { notifier?.notify(event, deployment: final, app: app) }
        } catch {
            log.line("could not record the end of the deployment: \(error)")
        }
        await finished(id)
    }

    /// What the end of a deployment is called in notifications; nil for one that never ran (superseded).
    static func event(for deployment: Deployment) -> NotifyEvent? {
        switch deployment.status {
        case .succeeded: deployment.kind == .rollback ? .rolledBack : .succeeded
        case .rolledBack: .autoRollback
        case .failed, .interrupted, .cancelled: .failed
        default: nil
        }
    }

    private func enter(_ id: Int, _ phase: DeploymentStatus) async throws {
        while phase == .starting, repairing {
            await withCheckedContinuation { repairWaiters.append($0) }
        }
        if phase == .switching || phase == .watching, cancelReasons[id] != nil { throw CancellationError() }
        if running?.id == id { running?.phase = phase }
        try await history.update(app: app.name, id: id) { $0.enter(phase) }
    }

    private func takeCancelReason(_ id: Int) -> (status: DeploymentStatus, reason: String)? {
        cancelReasons.removeValue(forKey: id)
    }

    private func finished(_ id: Int) {
        cancelReasons[id] = nil
        running = nil
        guard !isShutDown else { return resumeIdleWaiters() }
        if let next = pendingRollback {
            pendingRollback = nil
            start(next)
        } else if let next = waiting {
            waiting = nil
            start(next)
        } else {
            resumeIdleWaiters()
        }
    }

    private func resumeIdleWaiters() {
        let waiters = idleWaiters
        idleWaiters = []
        for waiter in waiters { waiter.resume() }
    }

}

/// The queue as `/status` shows it.
public struct QueueSnapshot: Sendable, Codable, Equatable {
    public struct Entry: Sendable, Codable, Equatable {
        public var id: Int
        public var kind: DeploymentKind
        public var phase: DeploymentStatus
    }

    public var running: Entry?
    public var waiting: [Entry]
}

/// Why the queue refused work.
public enum QueueError: Error, CustomStringConvertible, Equatable {
    case shuttingDown

    public var description: String {
        switch self {
        case .shuttingDown: "pushdeploy is shutting down and takes no new deployments"
        }
    }
}
