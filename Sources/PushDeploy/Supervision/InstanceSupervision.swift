import Foundation

/// Keeps the live and warm instances serving after a deployment (the `process` runner; systemd has `Restart=`).
///
/// Every half second it checks that each recorded instance's process is still the one started; every health
/// interval it probes the live one. An instance that exited, or failed its health check three times in a row,
/// is restarted with the same release on the same port, with backoff between failed attempts. When a live
/// instance cannot be brought back and the previous release is warm and healthy, traffic flips to it: an
/// automatic rollback. Each repair is a history record (kind `restart`, or `rollback` for the flip) with its log,
/// and the restart count is kept in `state.json`. Repairs run only while no deployment is touching instances.
public actor InstanceSupervision {
    private let apps: [AppConfig]
    private let parts: RolloutParts
    private let history: any DeploymentHistory
    private let queues: [String: DeployQueue]
    private let metrics: DeploymentMetrics?
    private let notifier: DeploymentNotifier?
    /// How often processes are checked.
    private let tick: Duration
    /// Failed health probes in a row that make a live instance count as hung.
    private let unhealthyProbes = 3

    private struct Watch {
        var failedProbes = 0
        var nextProbe = ContinuousClock.now
        var failedRepairs = 0
        var nextRepair = ContinuousClock.now
    }

    private var watches: [String: Watch] = [:]

    public init(apps: [AppConfig], parts: RolloutParts, history: any DeploymentHistory, queues: [String: DeployQueue],
                metrics: DeploymentMetrics? = nil, notifier: DeploymentNotifier? = nil, tick: Duration = .milliseconds(500)) {
        self.metrics = metrics
        self.notifier = notifier
        self.apps = apps.filter { $0.run.runner == .process }
        self.parts = parts
        self.history = history
        self.queues = queues
        self.tick = tick
    }

    /// Checks and repairs until the task is cancelled.
    public func run() async {
        while !Task.isCancelled {
            for app in apps { await check(app) }
            try? await Task.sleep(for: tick)
        }
    }

    /// One round for one app: what died or hangs is repaired (when the queue lets it).
    func check(_ app: AppConfig) async {
        guard let state = try? await parts.state.state(app: app.name) else { return }
        for entry in state.entries {
            if let log = entry.instance.logPath { AppLogRotation.rotateIfNeeded(log, maxBytes: app.run.logMaxBytes) }
        }
        for entry in state.entries where entry.role != .starting {
            let key = "\(app.name)/\(entry.instance.port)"
            var watch = watches[key] ?? Watch()
            defer { watches[key] = watch }
            var problem: String?
            if await !parts.supervisor.isRunning(entry.instance) {
                problem = "exited"
            } else if entry.role == .live, ContinuousClock.now >= watch.nextProbe {
                watch.nextProbe = ContinuousClock.now + max(app.health.interval, .milliseconds(200))
                if await parts.health.isHealthy(port: entry.instance.port, health: app.health) {
                    watch.failedProbes = 0
                } else {
                    watch.failedProbes += 1
                    if watch.failedProbes >= unhealthyProbes { problem = "stopped answering its health check (\(unhealthyProbes) failures in a row)" }
                }
            }
            guard let problem, ContinuousClock.now >= watch.nextRepair, let queue = queues[app.name] else { continue }
            let attempt = watch.failedRepairs + 1
            let outcome = await queue.whileInstancesAreFree { [self] in
                await repair(entry, problem: problem, app: app, attempt: attempt)
            }
            guard let outcome else { continue }  // a deployment is busy with the instances: next round
            switch outcome {
            case .restarted, .flipped, .gone:
                watch = Watch()
            case .failed:
                watch.failedRepairs += 1
                watch.failedProbes = 0
                // 1 s, 2 s, 4 s … at most a minute between attempts.
                watch.nextRepair = ContinuousClock.now + .seconds(min(60, 1 << min(watch.failedRepairs - 1, 6)))
            }
        }
    }

    enum Repair: Sendable {
        case restarted, flipped, failed, gone
    }

    /// Restarts `entry`'s release on its port; for a live instance that will not come back, flips to a warm healthy one.
    private func repair(_ entry: AppState.Entry, problem: String, app: AppConfig, attempt: Int) async -> Repair {
        // A deployment may have changed things since the check.
        guard let current = try? await parts.state.state(app: app.name).entry(port: entry.instance.port),
              current.instance == entry.instance else { return .gone }
        let instance = entry.instance
        let trigger = Trigger(source: .supervisor, message: "\(instance.version) on port \(instance.port) (\(entry.role.rawValue)) \(problem)")
        guard let (record, _) = try? await history.create(app: app.name, kind: .restart, trigger: trigger, strategy: app.strategy.name) else {
            return .failed
        }
        let log = (try? await history.log(app: app.name, id: record.id)) ?? MemoryDeploymentLog()
        log.line("supervision: \(trigger.message ?? problem); restarting it (attempt \(attempt))")
        // Blue-green: the include file names the other slot as nginx's fallback; when the warm release runs there and
        // is healthy, a site with `error_page 502 504 = @pushdeploy_fallback` serves from it meanwhile.
        var fallback: String?
        if entry.role == .live, app.strategy.slots != nil, let warm = current.role == .live ? try? await parts.state.state(app: app.name).warm.first : nil,
           await parts.supervisor.isRunning(warm), await parts.health.isHealthy(port: warm.port, health: app.health) {
            fallback = "while \(instance.version) was down, nginx's fallback (@pushdeploy_fallback) was \(warm.version) on port \(warm.port), running and healthy"
            log.line("supervision: \(fallback!)")
        }
        _ = try? await history.update(app: app.name, id: record.id) { [instance, fallback] in
            $0.version = instance.version
            $0.commit = instance.commit
            $0.note = fallback
            $0.enter(.starting)
        }
        do {
            let restarted = try await restart(instance, app: app, log: log)
            try await parts.state.update(app: app.name) { state in
                state.set(restarted, role: entry.role, restarts: (entry.restarts ?? 0) + 1)
            }
            log.line("supervision: \(instance.version) serves again on port \(instance.port) (pid \(restarted.pid.map(String.init) ?? "?"))")
            let final = try? await history.update(app: app.name, id: record.id) { $0.enter(.healthy); $0.finish(.succeeded) }
            metrics?.instanceRestarted(app: app.name, succeeded: true)
            if let final {
                metrics?.finished(final)
                notifier?.notify(.instanceRestarted, deployment: final, app: app)
            }
            return .restarted
        } catch {
            log.line("supervision: the restart failed: \(error)")
            let final = try? await history.update(app: app.name, id: record.id) { [reason = "\(error)"] in $0.finish(.failed, error: reason) }
            metrics?.instanceRestarted(app: app.name, succeeded: false)
            if let final { metrics?.finished(final) }
        }
        guard entry.role == .live, app.strategy.slots != nil else { return .failed }
        return await flipToWarm(from: instance, problem: problem, app: app) ? .flipped : .failed
    }

    /// Stops what is left of `instance` and starts its release again on its port, waiting until it is healthy.
    private func restart(_ instance: Instance, app: AppConfig, log: any DeploymentLog) async throws -> Instance {
        try await parts.supervisor.stop(instance, app: app, log: log)
        guard let release = try await parts.releases.release(app: app.name, version: instance.version) else {
            throw DeployError.noRollbackTarget(app: app.name, reason: "release \(instance.version) is no longer stored", available: [])
        }
        let started = try await parts.supervisor.start(release, app: app, port: instance.port, slot: instance.slot, log: log)
        do {
            let supervisor = parts.supervisor
            try await parts.health.waitUntilHealthy(port: instance.port, health: app.health, log: log) {
                await supervisor.isRunning(started)
            }
        } catch {
            try? await parts.supervisor.stop(started, app: app, log: log)
            throw error
        }
        return started
    }

    /// Sends traffic to the warm previous release when it runs and is healthy; recorded as an automatic rollback.
    private func flipToWarm(from dead: Instance, problem: String, app: AppConfig) async -> Bool {
        guard let state = try? await parts.state.state(app: app.name), let warm = state.warm.first,
              await parts.supervisor.isRunning(warm), await parts.health.isHealthy(port: warm.port, health: app.health) else { return false }
        let trigger = Trigger(source: .supervisor, message: "automatic rollback: \(dead.version) on port \(dead.port) \(problem) and did not come back")
        guard let (record, _) = try? await history.create(app: app.name, kind: .rollback, trigger: trigger, strategy: app.strategy.name) else {
            return false
        }
        let log = (try? await history.log(app: app.name, id: record.id)) ?? MemoryDeploymentLog()
        log.line("supervision: \(trigger.message ?? problem): sending traffic to \(warm.version) on \(warm.slot) (\(warm.port))")
        _ = try? await history.update(app: app.name, id: record.id) { [warm, dead] in
            $0.version = warm.version
            $0.commit = warm.commit
            $0.previousVersion = dead.version
            $0.enter(.switching)
        }
        do {
            try await parts.traffic.route(to: [warm.port], app: app, expectVersion: warm.version, log: log)
            try await parts.state.update(app: app.name) { state in
                state.set(warm, role: .live)
                state.remove(port: dead.port)
            }
            try? await parts.supervisor.stop(dead, app: app, log: log)
            log.line("supervision: \(warm.version) serves; \(dead.version) is stopped")
            if let final = try? await history.update(app: app.name, id: record.id, { $0.finish(.succeeded) }) {
                metrics?.finished(final)
                notifier?.notify(.autoRollback, deployment: final, app: app)
            }
            return true
        } catch {
            log.line("supervision: the flip to \(warm.version) failed: \(error)")
            _ = try? await history.update(app: app.name, id: record.id) { [reason = "\(error)"] in $0.finish(.failed, error: reason) }
            return false
        }
    }
}
