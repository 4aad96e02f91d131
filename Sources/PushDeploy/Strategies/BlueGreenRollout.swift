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
        guard let (bluePort, greenPort) = app.strategy.slots else {
            throw RolloutError.wrongStrategy(app: app.name, expected: "blue-green or canary")
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
        let (instance, startedHere) = try await instanceOnIdleSlot(release, app: app, slot: idleSlot, port: idlePort,
                                                                   recorded: state.entry(port: idlePort), log: log)
        var watch = ReleaseWatch(parts: parts, app: app, progress: progress, releaseGuard: nil)
        do {
            try await progress.enter(.healthy)
            if progress.kind == .deploy {
                try await parts.hooks.run(.beforeSwitch, app: app, context: context, log: log)
            }
            try await progress.enter(.switching)
            // Opened before the switch, so the guard sees every request the new release gets.
            if progress.kind == .deploy, app.watch > .zero || app.strategy.canaryPlan != nil {
                watch.releaseGuard = ReleaseGuard.open(for: app, log: log)
            }
            if let plan = app.strategy.canaryPlan, progress.kind == .deploy {
                if let live, await parts.supervisor.isRunning(live) {
                    if let reason = try await canarySteps(plan, release: release, on: instance, stable: live, app: app, watch: watch) {
                        // Every request is back on the stable release, which never stopped being live.
                        if startedHere { await stop(instance, app: app, log: log) }
                        await parts.runReporting(.afterRollback, app: app, context: Self.context(of: live, progress: progress), log: log)
                        return .rolledBack(reason: reason)
                    }
                } else {
                    log.line("canary: no running release to share requests with, so \(release.version) takes them all at once")
                }
            }
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
        let watches = progress.kind == .deploy && app.watch > .zero
        let previous = live.map { live in
            app.keepPreviousWarm ? "; \(live.slot) (\(live.port)) keeps \(live.version) warm"
                : "; \(live.slot) (\(live.port)) stops \(live.version)\(watches ? " once the watch passes" : "") (keep_previous_warm: false)"
        }
        log.line("traffic: \(idleSlot) (\(idlePort)) serves \(release.version)\(previous ?? "")")
        context.slot = idleSlot
        await parts.runReporting(progress.kind == .deploy ? .afterSwitch : .afterRollback, app: app, context: context, log: log)

        if watches {
            try await progress.enter(.watching)
            if let reason = try await watch.watch([instance], for: app.watch) {
                return try await flipBack(from: instance, to: live, app: app, reason: reason, progress: progress)
            }
        }
        if !app.keepPreviousWarm, let live {
            await stop(live, app: app, log: log)
            try await parts.state.update(app: app.name) { $0.remove(port: live.port) }
        }
        return .live
    }

    /// Gives the new release a growing share of requests, step by step, each watched against the stable release;
    /// returns why a step failed (every request is then back on the stable release), or nil when all passed and
    /// the new release is ready for all of them. Any error, a cancellation included, also sends every request back.
    private func canarySteps(_ plan: CanaryPlan, release: Release, on instance: Instance, stable: Instance, app: AppConfig,
                             watch: ReleaseWatch) async throws -> String? {
        let progress = watch.progress, log = progress.log
        let traffic = parts.traffic
        let allBack = { @Sendable in
            try await traffic.route(to: [stable.port], app: app, expectVersion: stable.version, log: log)
        }
        do {
            for (index, percent) in plan.steps.enumerated() where percent < 100 {
                if index > 0 { try await progress.enter(.switching) }
                try await traffic.route(to: [stable.port, instance.port], canaryPercent: percent, app: app, expectVersion: release.version, log: log)
                log.line("canary: \(percent) % of requests to \(release.version) on \(instance.slot) (\(instance.port)), "
                         + "the rest to \(stable.version) on \(stable.slot) (\(stable.port))")
                try await progress.enter(.watching)
                if let reason = try await watch.watch([instance], for: plan.stepWatch, percent: percent, stable: [stable.port]) {
                    log.line("\(reason): every request back to \(stable.version) on \(stable.slot) (\(stable.port))")
                    try await allBack()
                    return "\(reason) (canary step \(percent) %)"
                }
            }
            if plan.steps.count > 1 { try await progress.enter(.switching) }
            return nil
        } catch {
            // In a task of its own: a cancelled deployment (a rollback, a shutdown) must still take its share back.
            do {
                try await Task { try await allBack() }.value
            } catch let restore {
                log.line("canary: could not send every request back to \(stable.version): \(restore)")
            }
            throw error
        }
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

    /// Sends traffic back to the previous release after a failed watch and stops the new one.
    private func flipBack(from instance: Instance, to previous: Instance?, app: AppConfig, reason: String,
                          progress: DeploymentProgress) async throws -> RolloutOutcome {
        let log = progress.log
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
        await parts.runReporting(.afterRollback, app: app, context: Self.context(of: previous, progress: progress), log: log)
        return .rolledBack(reason: reason)
    }

    /// The hook context of a release that is live again after an automatic rollback.
    private static func context(of instance: Instance, progress: DeploymentProgress) -> HookContext {
        HookContext(deploymentID: progress.id, app: progress.app, version: instance.version, commit: instance.commit, port: instance.port,
                    slot: instance.slot)
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
