extension Deployer {
    /// The production pipeline for `config`: the real steps where they exist, a clear "not available" error where not yet.
    public static func standard(config: Config) -> Deployer {
        let store = DeploymentStore(stateDirectory: config.stateDirectory)
        return Deployer(
            stateDirectory: config.stateDirectory,
            fetcher: UnavailableStep(step: "fetching with libgit2"),
            builder: UnavailableStep(step: "building with Gradle"),
            rollout: UnavailableStep(step: "rollout through nginx"),
            rollbackTargets: HistoryRollbackTargets(store: store, release: { _, _ in nil }, storedVersions: { _ in [] }))
    }
}
