/// Watches a new release once requests reach it: its processes, its health, and, with a guard, what nginx logged.
struct ReleaseWatch {
    var parts: RolloutParts
    var app: AppConfig
    var progress: DeploymentProgress
    var releaseGuard: ReleaseGuard?

    /// How often the guard reads the access log: a bad release is seen within this of nginx logging its answers.
    static let guardTick: Duration = .milliseconds(100)

    /// Watches `instances` for `duration`; returns why they turned bad, or nil when they stayed well. For a canary step,
    /// `percent` is the share of requests they get and `stable` the ports of the release that takes the rest.
    /// The guard's figures at the end are logged and kept in the deployment record. Cancelling (a rollback, a
    /// shutdown) ends the watch at once with `CancellationError`; traffic stays where it is.
    func watch(_ instances: [Instance], for duration: Duration, percent: Int = 100, stable: Set<Int>? = nil) async throws -> String? {
        let log = progress.log
        let ports = Set(instances.map(\.port))
        let deadline = ContinuousClock.now + duration
        var failures: [Int: Int] = [:]
        var nextHealthCheck = ContinuousClock.now
        let which = { (instance: Instance) in instances.count > 1 ? " (port \(instance.port))" : "" }
        let what = instances.map(\.version).first.map { "\($0)\(percent < 100 ? " at \(percent) % of requests" : "")" } ?? "the new release"
        log.line("watching \(what) for \(DurationParser.format(duration))")
        while ContinuousClock.now < deadline {
            try Task.checkCancellation()
            if let step = releaseGuard?.look(at: ports, percent: percent, stable: stable), step.verdict == .tripped {
                await keep(step)
                return step.reason
            }
            if ContinuousClock.now >= nextHealthCheck {
                for instance in instances {
                    if await !parts.supervisor.isRunning(instance) {
                        return "the new release exited during the watch window\(which(instance))"
                    }
                    if await parts.health.isHealthy(port: instance.port, health: app.health) {
                        failures[instance.port] = 0
                    } else {
                        failures[instance.port, default: 0] += 1
                        // One slow answer is not a verdict; three in a row are.
                        if failures[instance.port, default: 0] >= 3 {
                            return "the new release turned unhealthy during the watch window\(which(instance))"
                        }
                    }
                }
                nextHealthCheck = ContinuousClock.now + app.health.interval
            }
            let tick = releaseGuard == nil ? app.health.interval : min(Self.guardTick, app.health.interval)
            try await Task.sleep(for: min(tick, max(deadline - ContinuousClock.now, .zero)))
        }
        if let step = releaseGuard?.look(at: ports, percent: percent, stable: stable) {
            await keep(step)
            if step.verdict == .tripped { return step.reason }
        }
        return nil
    }

    /// Logs the guard's figures of a step and adds them to the deployment record.
    private func keep(_ step: GuardStep) async {
        let window = releaseGuard.map { " in the last \(DurationParser.format($0.config.window))" } ?? ""
        progress.log.line("guard: \(step)\(window)")
        try? await progress.record { [step] in $0.guardSteps = ($0.guardSteps ?? []) + [step] }
    }
}
