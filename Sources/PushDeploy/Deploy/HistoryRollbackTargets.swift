/// Picks rollback targets from the deployment history and the stored releases.
public struct HistoryRollbackTargets: Sendable {
    public var store: DeploymentStore
    public var releases: any ReleaseStore

    public init(store: DeploymentStore, releases: any ReleaseStore) {
        self.store = store
        self.releases = releases
    }

    /// The versions a deployment must never prune: the live one and the one a rollback would go to.
    public func protectedVersions(app: String) async -> Set<String> {
        let succeeded = await store.all(app: app).filter { $0.status == .succeeded }.compactMap(\.version)
        guard let live = succeeded.last else { return [] }
        let previous = succeeded.last { $0 != live }
        return Set([live] + (previous.map { [$0] } ?? []))
    }

    public func target(app: AppConfig, requested: String?, rollback id: Int) async throws -> Release {
        let history = await store.all(app: app.name).filter { $0.id != id }
        let live = history.last { $0.status == .succeeded }?.version
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
            let previous = history.reversed().first { $0.status == .succeeded && $0.version != nil && $0.version != live }
            guard let found = previous?.version else {
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

    private func available(_ app: String, live: String?) async -> [String] {
        ((try? await releases.releases(app: app)) ?? []).map(\.version).filter { $0 != live }
    }
}
