/// At start-up: re-adopts the instances still running, stops half-started ones, and makes `state.json` agree with nginx.
///
/// The include file is the truth about traffic: an instance nginx points at is never stopped here, even if
/// the state still calls it `starting` (pushdeploy died between the switch and the state write).
public struct InstanceReconciler: Sendable {
    public var parts: RolloutParts

    public init(parts: RolloutParts) { self.parts = parts }

    /// Reconciles one app and returns what it changed, one line per change, for the server log.
    public func reconcile(_ app: AppConfig, log: any DeploymentLog = MemoryDeploymentLog()) async throws -> [String] {
        var notes: [String] = []
        let state = try await parts.state.state(app: app.name)
        var routed = parts.traffic.currentPorts(app: app) ?? []
        if app.strategy.canaryPlan != nil, routed.count > 1, let stable = state.entry(port: routed[0])?.instance {
            // pushdeploy stopped during a canary step: no one watches the step any more, so every request goes back to
            // the stable release (the `*` share), and the canary is stopped below as half-started.
            try await parts.traffic.route(to: [routed[0]], app: app, expectVersion: stable.version, log: log)
            notes.append("nginx still split requests for a canary step of a deployment that did not finish: all of them back to "
                         + "\(stable.version) on port \(routed[0])")
            routed = [routed[0]]
        }
        var running: [Int: Bool] = [:]
        for entry in state.entries {
            running[entry.instance.port] = await parts.supervisor.isRunning(entry.instance)
        }
        var toStop: [Instance] = []
        try await parts.state.update(app: app.name) { state in
            for entry in state.entries {
                let port = entry.instance.port
                let alive = running[port] ?? false
                switch (entry.role, alive, routed.contains(port)) {
                case (_, false, _):
                    state.remove(port: port)
                    notes.append("\(entry.instance.version) on port \(port) (\(entry.role.rawValue)) is no longer running")
                case (.starting, true, true):
                    state.set(entry.instance, role: .live)
                    notes.append("\(entry.instance.version) on port \(port) already serves traffic: adopted as live")
                case (.starting, true, false):
                    toStop.append(entry.instance)
                    state.remove(port: port)
                    notes.append("stopping half-started \(entry.instance.version) on port \(port)")
                case (.live, true, false) where !routed.isEmpty:
                    state.set(entry.instance, role: .warm)
                    notes.append("\(entry.instance.version) on port \(port) is not in nginx's include: kept warm")
                case (.warm, true, true):
                    state.set(entry.instance, role: .live)
                    notes.append("\(entry.instance.version) on port \(port) serves traffic: marked live")
                default:
                    break
                }
            }
        }
        for instance in toStop {
            try? await parts.supervisor.stop(instance, app: app, log: log)
        }
        let now = try await parts.state.state(app: app.name)
        let servedAlive = routed.filter { port in now.entry(port: port) != nil }
        if !routed.isEmpty, servedAlive.isEmpty, let fallback = now.live.first ?? now.warm.first {
            // nginx points at nothing that runs: send it to what does, rather than leave the site down.
            try await parts.traffic.route(to: [fallback.port], app: app, expectVersion: fallback.version, log: log)
            try await parts.state.update(app: app.name) { $0.set(fallback, role: .live) }
            notes.append("nginx pointed at \(routed) where nothing runs: switched to \(fallback.version) on port \(fallback.port)")
        }
        let known = try await parts.state.state(app: app.name).entries.map(\.instance)
        notes += await parts.supervisor.stopStrays(app: app, known: known, log: log)
        return notes
    }
}
