/// Picks rollback targets from the deployment history and the stored releases.
public struct HistoryRollbackTargets: RollbackTargetFinder {
    public var store: DeploymentStore
    /// Reads a stored release, or nil when it was pruned or never stored.
    public var release: @Sendable (_ app: String, _ version: String) -> Release?
    /// Versions stored for the app, newest first.
    public var storedVersions: @Sendable (_ app: String) -> [String]

    public init(store: DeploymentStore, release: @escaping @Sendable (String, String) -> Release?,
                storedVersions: @escaping @Sendable (String) -> [String]) {
        self.store = store
        self.release = release
        self.storedVersions = storedVersions
    }

    public func target(app: AppConfig, requested: String?, rollback id: Int) async throws -> Release {
        let history = try await store.all(app: app.name).filter { $0.id != id }
        let live = history.last { $0.status == .succeeded }?.version
        let version: String
        if let requested {
            if let number = Int(requested), let deployment = history.first(where: { $0.id == number }) {
                guard let built = deployment.version else {
                    throw DeployError.noRollbackTarget(app: app.name, reason: "deployment \(number) built no release",
                                                       available: available(app.name, live: live))
                }
                version = built
            } else {
                version = requested
            }
            if version == live {
                throw DeployError.noRollbackTarget(app: app.name, reason: "\(version) is already live", available: available(app.name, live: live))
            }
        } else {
            let previous = history.reversed().first { $0.status == .succeeded && $0.version != nil && $0.version != live }
            guard let found = previous?.version else {
                throw DeployError.noRollbackTarget(app: app.name, reason: "no earlier successful release",
                                                   available: available(app.name, live: live))
            }
            version = found
        }
        guard let stored = release(app.name, version) else {
            throw DeployError.noRollbackTarget(app: app.name, reason: "release \(version) is not stored (pruned or never built)",
                                               available: available(app.name, live: live))
        }
        return stored
    }

    private func available(_ app: String, live: String?) -> [String] {
        storedVersions(app).filter { $0 != live }
    }
}
