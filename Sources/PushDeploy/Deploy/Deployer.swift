/// The real deployment pipeline: fetch (libgit2), build (Gradle), roll out (nginx), each phase recorded.
public struct Deployer: DeploymentRunner {
    public var stateDirectory: String
    public var fetcher: any SourceFetcher
    public var builder: any ReleaseBuilder
    public var rollout: any Rollout
    /// Finds the stored release a rollback goes to.
    public var rollbackTargets: any RollbackTargetFinder

    public init(stateDirectory: String, fetcher: any SourceFetcher, builder: any ReleaseBuilder, rollout: any Rollout,
                rollbackTargets: any RollbackTargetFinder) {
        self.stateDirectory = stateDirectory
        self.fetcher = fetcher
        self.builder = builder
        self.rollout = rollout
        self.rollbackTargets = rollbackTargets
    }

    /// The checkout folder of an app.
    public func checkoutPath(_ app: String) -> String { "\(stateDirectory)/repos/\(app)" }

    public func run(_ deployment: Deployment, app: AppConfig, progress: DeploymentProgress) async throws -> RolloutOutcome {
        switch deployment.kind {
        case .deploy:
            try await progress.enter(.fetching)
            let branch = deployment.trigger.ref.flatMap { $0.hasPrefix("refs/heads/") ? String($0.dropFirst(11)) : $0 }
            let request = FetchRequest(app: app.name, repository: app.repository, checkoutPath: checkoutPath(app.name),
                                       branch: branch, commit: deployment.trigger.commit)
            let source = try await fetcher.fetch(request, log: progress.log)
            try await progress.record { $0.commit = source.commit }
            try Task.checkCancellation()
            try await progress.enter(.building)
            let release = try await builder.build(
                BuildRequest(app: app.name, checkoutPath: source.checkoutPath, commit: source.commit, build: app.build,
                             deploymentID: deployment.id),
                log: progress.log)
            try await progress.record { $0.version = release.version }
            progress.log.line("release \(release.version) stored (built in \(String(format: "%.1f", release.buildSeconds)) s)")
            try Task.checkCancellation()
            return try await rollout.rollOut(release, app: app, progress: progress)
        case .rollback:
            let release = try await rollbackTargets.target(app: app, requested: deployment.rollbackTo, rollback: deployment.id)
            try await progress.record {
                $0.version = release.version
                $0.commit = release.commit
            }
            progress.log.line("rolling back to \(release.version) (commit \(release.commit.prefix(12)))")
            return try await rollout.rollOut(release, app: app, progress: progress)
        }
    }
}

/// Finds the release a rollback goes to: the one asked for, or the previous successful one.
public protocol RollbackTargetFinder: Sendable {
    func target(app: AppConfig, requested: String?, rollback id: Int) async throws -> Release
}
