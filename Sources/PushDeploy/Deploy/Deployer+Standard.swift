extension Deployer {
    /// The production pipeline for `config`: libgit2 fetch, Gradle build, stored releases; rollout still "not available".
    public static func standard(config: Config, history: DeploymentStore) -> Deployer {
        let releases = FileReleaseStore(stateDirectory: config.stateDirectory)
        return Deployer(
            stateDirectory: config.stateDirectory,
            fetcher: GitSourceFetcher(),
            builder: GradleBuilder(store: releases, scratchDirectory: config.stateDirectory + "/tmp"),
            rollout: UnavailableStep(step: "rollout through nginx"),
            releases: releases,
            history: history)
    }
}
