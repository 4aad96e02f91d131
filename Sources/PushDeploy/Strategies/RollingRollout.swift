/// Rolling: N instances behind an nginx `upstream`, replaced one at a time; never fewer than N-1 serve.
///
/// For each port: take it out of the upstream, reload, stop it (SIGTERM lets in-flight requests finish),
/// start the new release there, wait for health, put it back. A failure midway stops and puts every
/// replaced port back on the release it ran before. Then the watch (health, and the guard over the new
/// instances' share of nginx's access log); a release that fails it gets the same treatment, port by port.
public struct RollingRollout: Rollout {
    public var parts: RolloutParts

    public init(parts: RolloutParts) { self.parts = parts }

    public func rollOut(_ release: Release, app: AppConfig, progress: DeploymentProgress) async throws -> RolloutOutcome {
        guard case let .rolling(ports) = app.strategy else {
            throw RolloutError.wrongStrategy(app: app.name, expected: "rolling")
        }
        let log = progress.log
        let before = try await parts.state.state(app: app.name)
        var serving = ports.filter { port in before.entry(port: port)?.role == .live }
        var replaced: [(port: Int, previous: Instance?)] = []
        var started: [Instance] = []
        // Opened before the first port takes requests, so the guard sees every request the new release gets.
        let watch = ReleaseWatch(parts: parts, app: app, progress: progress,
                                 releaseGuard: progress.kind == .deploy && app.watch > .zero ? ReleaseGuard.open(for: app, log: log) : nil)
        try await progress.enter(.starting)
        for port in ports {
            let previous = before.entry(port: port)?.instance
            if previous?.version == release.version, let previous, await parts.supervisor.isRunning(previous) {
                log.line("port \(port) already runs \(release.version)")
                continue
            }
            do {
                if serving.contains(port), serving.count > 1 {
                    serving.removeAll { $0 == port }
                    try await parts.traffic.route(to: serving, app: app, expectVersion: nil, log: log)
                }
                if let previous { try await parts.supervisor.stop(previous, app: app, log: log) }
                replaced.append((port, previous))
                let instance = try await parts.supervisor.start(release, app: app, port: port, slot: "instance-\(port)", log: log)
                try await parts.state.update(app: app.name) { $0.set(instance, role: .starting) }
                started.append(instance)
                let supervisor = parts.supervisor
                try await parts.health.waitUntilHealthy(port: port, health: app.health, log: log) {
                    await supervisor.isRunning(instance)
                }
                if !serving.contains(port) { serving.append(port) }
                serving.sort()
                if replaced.count == 1 {
                    try await progress.enter(.healthy)
                    let context = HookContext(deploymentID: progress.id, app: app.name, version: release.version,
                                              commit: release.commit, port: port, slot: "instance-\(port)")
                    if progress.kind == .deploy { try await parts.hooks.run(.beforeSwitch, app: app, context: context, log: log) }
                    try await progress.enter(.switching)
                }
                try await parts.traffic.route(to: serving, app: app, expectVersion: nil, log: log)
                try await parts.state.update(app: app.name) { $0.set(instance, role: .live) }
                log.line("port \(port) serves \(release.version) (\(replaced.count) of \(ports.count) replaced)")
            } catch {
                // In a task of its own: a cancelled deployment (a shutdown, a rollback) must still get every port back.
                let restored = await Task { [replaced] in await restore(replaced, release: release, app: app, log: log) }.value
                throw RolloutError.rollingFailed(app: app.name, port: port, reason: error is CancellationError ? "cancelled" : "\(error)",
                                                 restored: restored)
            }
        }
        if replaced.isEmpty {
            try await progress.enter(.healthy)
            try await progress.enter(.switching)
        }
        let context = HookContext(deploymentID: progress.id, app: app.name, version: release.version, commit: release.commit)
        await parts.runReporting(progress.kind == .deploy ? .afterSwitch : .afterRollback, app: app, context: context, log: log)
        if progress.kind == .deploy, app.watch > .zero, !started.isEmpty {
            // Cut short (a rollback, a shutdown), the watch throws and the instances stay as they are for what comes next.
            try await progress.enter(.watching)
            if let reason = try await watch.watch(started, for: app.watch) {
                log.line("\(reason): putting the previous release back on \(replaced.map { String($0.port) }.joined(separator: ", "))")
                let restored = await Task { [replaced] in await restore(replaced, release: release, app: app, log: log) }.value
                guard restored.count == replaced.filter({ $0.previous != nil }).count else {
                    throw RolloutError.rollingFailed(app: app.name, port: replaced.first?.port ?? 0, reason: reason, restored: restored)
                }
                let previous = replaced.compactMap(\.previous).first
                await parts.runReporting(.afterRollback, app: app, context: HookContext(deploymentID: progress.id, app: app.name, version: previous?.version,
                                                                                   commit: previous?.commit), log: log)
                return .rolledBack(reason: reason)
            }
        }
        return .live
    }

    /// Puts the previous release back on every replaced port and nginx back on all of them.
    private func restore(_ replaced: [(port: Int, previous: Instance?)], release: Release, app: AppConfig,
                         log: any DeploymentLog) async -> [Int] {
        var restored: [Int] = []
        var serving = (try? await parts.state.state(app: app.name).live.map(\.port)) ?? []
        for (port, previous) in replaced.reversed() {
            if serving.contains(port), serving.count > 1 {
                // Out of nginx before it is stopped, so no request is sent to it meanwhile.
                serving.removeAll { $0 == port }
                try? await parts.traffic.route(to: serving.sorted(), app: app, expectVersion: nil, log: log)
            }
            if let current = try? await parts.state.state(app: app.name).entry(port: port)?.instance, current.version == release.version {
                try? await parts.supervisor.stop(current, app: app, log: log)
            }
            _ = try? await parts.state.update(app: app.name) { $0.remove(port: port) }
            serving.removeAll { $0 == port }
            guard let previous else { continue }
            do {
                let stored = try await parts.releases.release(app: app.name, version: previous.version)
                guard let stored else {
                    log.line("cannot put \(previous.version) back on \(port): the release is no longer stored")
                    continue
                }
                let instance = try await parts.supervisor.start(stored, app: app, port: port, slot: previous.slot, log: log)
                let supervisor = parts.supervisor
                try await parts.health.waitUntilHealthy(port: port, health: app.health, log: log) { await supervisor.isRunning(instance) }
                try await parts.state.update(app: app.name) { $0.set(instance, role: .live) }
                serving.append(port)
                restored.append(port)
            } catch {
                log.line("could not put \(previous.version) back on port \(port): \(error)")
            }
        }
        if !serving.isEmpty {
            do {
                try await parts.traffic.route(to: serving.sorted(), app: app, expectVersion: nil, log: log)
            } catch {
                log.line("could not point nginx back at \(serving.sorted()): \(error)")
            }
        }
        return restored.sorted()
    }
}
