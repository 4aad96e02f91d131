/// Picks rollback targets from the deployment history and the stored releases.
public struct HistoryRollbackTargets: Sendable {
    public var history: any DeploymentHistory
    public var releases: any ReleaseStore
    /// What runs now; when set, its live and warm versions are protected too (a warm slot's jar must stay for a restart).
    public var state: AppStateStore?

    public init(history: any DeploymentHistory, releases: any ReleaseStore, state: AppStateStore? = nil) {
        self.history = history
        self.releases = releases
        self.state = state
    }

    /// The versions a deployment must never prune: the live one, the one a rollback would go to, and any still running.
    public func protectedVersions(app: String) async -> Set<String> {
        var protected: Set<String> = []
        if let state, let current = try? await state.state(app: app) {
            protected.formUnion(current.entries.map(\.instance.version))
        }
        let summaries = await history.summaries(app: app)
        guard let live = summaries.liveVersion else { return protected }
        return protected.union([live] + (summaries.rollbackVersion(live: live).map { [$0] } ?? []))
    }

    public func target(app: AppConfig, requested: String?, rollback id: Int) async throws -> Release {
        let history = await self.history.summaries(app: app.name).filter { $0.id != id }
        let live = await liveVersion(app: app.name) { history }
        let version: String
        if let requested {
            if let number = Int(requested), let deployment = history.first(where: { $0.id == number }) {
                guard let built = deployment.version else {
                    throw DeployError.noRollbackTarget(app: app.name, reason: "deployment \(number) built no release",
                                                       available: await available(app.name, live: live))
                }
                version = built
            } else {
                version = requested
            }
            if version == live {
                throw DeployError.noRollbackTarget(app: app.name, reason: "\(version) is already live", available: await available(app.name, live: live))
            }
        } else {
            guard let found = history.rollbackVersion(live: live) else {
                throw DeployError.noRollbackTarget(app: app.name, reason: "no earlier successful release",
                                                   available: await available(app.name, live: live))
            }
            version = found
        }
        guard let stored = try? await releases.release(app: app.name, version: version) else {
            throw DeployError.noRollbackTarget(app: app.name, reason: "release \(version) is not stored (pruned or never built)",
                                               available: await available(app.name, live: live))
        }
        return stored
    }

    /// What nginx serves: `state.json` knows (also after a deployment was cut off past its switch); the history's index is the fallback.
    func liveVersion(app: String, history: () async -> [DeploymentSummary]) async -> String? {
        if let state, let version = try? await state.state(app: app).liveVersion { return version }
        return await history().liveVersion
    }

    /// The instance nginx serves, as `state.json` records it (the newest, when a rolling deployment is half-way).
    func liveInstance(app: String) async -> Instance? {
        guard let state, let current = try? await state.state(app: app) else { return nil }
        return current.live.max { $0.startedAt < $1.startedAt }
    }

    /// The stored releases one can roll back to: every stored one but the live one, newest first.
    public func candidates(app: String) async -> [Release] {
        let live = await liveVersion(app: app) { await history.summaries(app: app) }
        return ((try? await releases.releases(app: app)) ?? []).filter { $0.version != live }.sorted { $0.builtAt > $1.builtAt }
    }

    private func available(_ app: String, live: String?) async -> [String] {
        ((try? await releases.releases(app: app)) ?? []).map(\.version).filter { $0 != live }
    }
}
