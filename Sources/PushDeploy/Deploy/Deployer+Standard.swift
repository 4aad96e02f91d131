extension RolloutParts {
    /// The production parts for `config`: detached processes or systemd units, HTTP health checks, nginx, `state.json`, hooks.
    public static func standard(config: Config, releases: any ReleaseStore) -> RolloutParts {
        let runner = SubprocessCommandRunner()
        return RolloutParts(
            supervisor: RunnerAppSupervisor(
                processes: ProcessAppSupervisor(stateDirectory: config.stateDirectory, releases: releases),
                systemd: SystemdAppSupervisor(stateDirectory: config.stateDirectory, releases: releases, runner: runner)),
            health: HTTPHealthChecker(),
            traffic: NginxTrafficSwitch(runner: runner),
            state: AppStateStore(stateDirectory: config.stateDirectory),
            releases: releases,
            hooks: LifecycleHookRunner(runner: runner, workingDirectory: config.baseDirectory))
    }
}

extension Deployer {
    /// The production pipeline for `config`: libgit2 fetch, Gradle build, stored releases, rollout through nginx.
    public static func standard(config: Config, history: any DeploymentHistory, parts: RolloutParts? = nil) -> Deployer {
        let releases = FileReleaseStore(stateDirectory: config.stateDirectory)
        let parts = parts ?? RolloutParts.standard(config: config, releases: releases)
        var deployer = Deployer(
            stateDirectory: config.stateDirectory,
            fetcher: GitSourceFetcher(),
            builder: GradleBuilder(store: releases, scratchDirectory: config.stateDirectory + "/tmp"),
            rollout: StrategyRollout(parts: parts),
            releases: releases,
            history: history,
            hooks: parts.hooks)
        deployer.rollbackTargets.state = parts.state
        return deployer
    }
}
