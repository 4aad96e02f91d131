import Foundation

/// Blue-green: the new release starts on the idle slot, nginx flips to it once it is healthy, the old slot stays warm.
///
/// The idle slot comes from `state.json`, never from probing ports. Traffic moves only after the new
/// instance is healthy, `before_switch` passed and nginx confirmed it; any failure before that leaves
/// traffic where it was and stops what this deployment started.
public struct BlueGreenRollout: Rollout {
    public var parts: RolloutParts

    public init(parts: RolloutParts) { self.parts = parts }

    public func rollOut(_ release: Release, app: AppConfig, progress: DeploymentProgress) async throws -> RolloutOutcome {
        guard case let .blueGreen(bluePort, greenPort) = app.strategy else {
            throw RolloutError.wrongStrategy(app: app.name, expected: "blue-green")
        }
        let log = progress.log
        let state = try await parts.state.state(app: app.name)
        // The include file is the truth about traffic: should state.json be behind it (a failed write after the
        // last switch), the slot nginx routes to is the live one, and is never the one made room on.
        var live = state.live.first
        if let routed = parts.traffic.currentPorts(app: app)?.first, routed == bluePort || routed == greenPort,
           live?.port != routed, let recorded = state.entry(port: routed)?.instance {
            log.line("state.json names \(live.map { "\($0.slot) (\($0.port))" } ?? "no slot") as live, but nginx routes to "
                     + "\(recorded.version) on port \(routed): going by nginx")
            live = recorded
        }
        let idlePort = live?.port == bluePort ? greenPort : bluePort
        let idleSlot = idlePort == bluePort ? "blue" : "green"
        var context = HookContext(deploymentID: progress.id, app: app.name, version: release.version, commit: release.commit,
                                  port: idlePort, slot: idleSlot)

        try await progress.enter(.starting)
        var accessLog: AccessLogFollower?
        let (instance, startedHere) = try await instanceOnIdleSlot(release, app: app, slot: idleSlot, port: idlePort,
                                                                   recorded: state.entry(port: idlePort), log: log)
        do {
            try await progress.enter(.healthy)
            if progress.kind == .deploy {
                try await parts.hooks.run(.beforeSwitch, app: app, context: context, log: log)
            }
            try await progress.enter(.switching)
            // Opened before the switch, so the guard sees every request the new release gets.
            accessLog = guardLog(app, log: log)
            try await parts.traffic.route(to: [idlePort], app: app, expectVersion: release.version, log: log)
        } catch {
            if startedHere { await stop(instance, app: app, log: log) }
            throw error
        }
        do {
            try await parts.state.update(app: app.name) { state in
                if let live { state.set(live, role: .warm) }
                state.set(instance, role: .live)
            }
        } catch {
            // nginx serves the new release now; the next deployment and start-up go by the include file.
            log.line("could not record the switch in state.json (\(error)); nginx routes to \(idlePort), which the include file says")
        }
        log.line("traffic: \(idleSlot) (\(idlePort)) serves \(release.version)\(live.map { "; \($0.slot) (\($0.port)) keeps \($0.version) warm" } ?? "")")
        context.slot = idleSlot
        await runReporting(progress.kind == .deploy ? .afterSwitch : .afterRollback, app: app, context: context, log: log)

        if progress.kind == .deploy, app.watch > .zero {
            try await progress.enter(.watching)
            if let reason = try await watch(instance, app: app, accessLog: accessLog, log: log) {
                return try await flipBack(from: instance, to: live, app: app, reason: reason, log: log)
            }
        }
        if !app.keepPreviousWarm, let live {
            await stop(live, app: app, log: log)
            try await parts.state.update(app: app.name) { $0.remove(port: live.port) }
        }
        return .live
    }

    /// The instance of `release` on the idle slot: the warm one when it already runs that release (a hot rollback), else a new one.
    private func instanceOnIdleSlot(_ release: Release, app: AppConfig, slot: String, port: Int, recorded: AppState.Entry?,
                                    log: any DeploymentLog) async throws -> (Instance, startedHere: Bool) {
        if let recorded, recorded.instance.version == release.version, await parts.supervisor.isRunning(recorded.instance),
           await parts.health.isHealthy(port: port, health: app.health) {
            log.line("\(slot) (\(port)) already runs \(release.version) and is healthy: no start needed")
            return (recorded.instance, false)
        }
        if let recorded {
            log.line("stopping \(recorded.instance.version) on \(slot) (\(port)) to make room")
            await stop(recorded.instance, app: app, log: log)
            try await parts.state.update(app: app.name) { $0.remove(port: port) }
        }
        let instance = try await parts.supervisor.start(release, app: app, port: port, slot: slot, log: log)
        try await parts.state.update(app: app.name) { $0.set(instance, role: .starting) }
        do {
            let supervisor = parts.supervisor
            try await parts.health.waitUntilHealthy(port: port, health: app.health, log: log) {
                await supervisor.isRunning(instance)
            }
        } catch {
            await stop(instance, app: app, log: log)
            throw error
        }
        return (instance, true)
    }

    /// Polls the new instance through the watch window; returns why it turned bad, or nil when it stayed healthy.
    /// Cancelling (a rollback, a shutdown) ends the watch at once with `CancellationError`; traffic stays where it is.
    private func watch(_ instance: Instance, app: AppConfig, accessLog: AccessLogFollower?, log: any DeploymentLog) async throws -> String? {
        let deadline = ContinuousClock.now + app.watch
        var failures = 0
        var window = app.guardConfig.map { BackendWindow(window: $0.window) }
        log.line("watching \(instance.version) for \(DurationParser.format(app.watch))")
        defer {
            if let window { log.line("guard: \(window.figures(port: instance.port)) in the last \(DurationParser.format(window.window))") }
        }
        while ContinuousClock.now < deadline {
            try Task.checkCancellation()
            if let accessLog, let config = app.guardConfig {
                window?.add(accessLog.read())
                if let reason = window?.figures(port: instance.port).verdict(config) { return reason }
            }
            if await !parts.supervisor.isRunning(instance) {
                return "the new release exited during the watch window"
            }
            if await parts.health.isHealthy(port: instance.port, health: app.health) {
                failures = 0
            } else {
                failures += 1
                // One slow answer is not a verdict; three in a row are.
                if failures >= 3 { return "the new release turned unhealthy during the watch window" }
            }
            try await Task.sleep(for: min(app.health.interval, max(deadline - ContinuousClock.now, .zero)))
        }
        return nil
    }

    /// The access log the guard reads, or nil (said in the log) when the guard is off.
    private func guardLog(_ app: AppConfig, log: any DeploymentLog) -> AccessLogFollower? {
        guard app.guardConfig != nil, app.watch > .zero else { return nil }
        guard let path = app.nginx?.accessLog else {
            log.line("guard: off, because nginx.access_log is not set (the guard reads nginx's access log)")
            return nil
        }
        return AccessLogFollower(path: path)
    }

    /// Sends traffic back to the previous release after a failed watch and stops the new one.
    private func flipBack(from instance: Instance, to previous: Instance?, app: AppConfig, reason: String,
                          log: any DeploymentLog) async throws -> RolloutOutcome {
        guard let previous, await parts.supervisor.isRunning(previous) else {
            throw RolloutError.cannotFlipBack(app: app.name, reason: "\(reason), and no previous release is running to go back to")
        }
        log.line("\(reason): switching back to \(previous.version) on \(previous.slot) (\(previous.port))")
        try await parts.traffic.route(to: [previous.port], app: app, expectVersion: previous.version, log: log)
        try await parts.state.update(app: app.name) { state in
            state.set(previous, role: .live)
            state.remove(port: instance.port)
        }
        await stop(instance, app: app, log: log)
        return .rolledBack(reason: reason)
    }

    private func stop(_ instance: Instance, app: AppConfig, log: any DeploymentLog) async {
        do {
            try await parts.supervisor.stop(instance, app: app, log: log)
        } catch {
            log.line("could not stop \(instance.version) on port \(instance.port): \(error)")
        }
        _ = try? await parts.state.update(app: app.name) { state in
            if state.entry(port: instance.port)?.instance == instance, state.entry(port: instance.port)?.role != .live {
                state.remove(port: instance.port)
            }
        }
    }

    private func runReporting(_ hook: HookName, app: AppConfig, context: HookContext, log: any DeploymentLog) async {
        do {
            try await parts.hooks.run(hook, app: app, context: context, log: log)
        } catch {
            log.line("\(hook.rawValue) hook failed (the switch stands): \(error)")
        }
    }
}

/// Why a rollout could not go on.
public enum RolloutError: Error, Sendable, Equatable, CustomStringConvertible {
    case wrongStrategy(app: String, expected: String)
    case cannotFlipBack(app: String, reason: String)
    case rollingFailed(app: String, port: Int, reason: String, restored: [Int])

    public var description: String {
        switch self {
        case let .wrongStrategy(app, expected): "app \(app) is not configured for \(expected)"
        case let .cannotFlipBack(app, reason): "\(app): \(reason)"
        case let .rollingFailed(app, port, reason, restored):
            "\(app): rolling stopped at port \(port): \(reason)" + (restored.isEmpty ? "" : "; put back the previous release on \(restored.map(String.init).joined(separator: ", "))")
        }
    }
}
