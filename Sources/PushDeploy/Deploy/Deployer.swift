/// The real deployment pipeline: fetch (libgit2), build (Gradle), roll out (nginx), each phase recorded.
public struct Deployer: DeploymentRunner {
    public var stateDirectory: String
    public var fetcher: any SourceFetcher
    public var builder: any ReleaseBuilder
    public var rollout: any Rollout
    public var releases: any ReleaseStore
    /// Runs `before_build`, `after_build` and `on_failure` (the rollout runs the switch hooks).
    public var hooks: any RolloutHooks
    /// Finds the stored release a rollback goes to, and the releases retention must keep.
    public var rollbackTargets: HistoryRollbackTargets

    public init(stateDirectory: String, fetcher: any SourceFetcher, builder: any ReleaseBuilder, rollout: any Rollout,
                releases: any ReleaseStore, history: any DeploymentHistory, hooks: any RolloutHooks = NoHooks()) {
        self.stateDirectory = stateDirectory
        self.fetcher = fetcher
        self.builder = builder
        self.rollout = rollout
        self.releases = releases
        self.hooks = hooks
        self.rollbackTargets = HistoryRollbackTargets(history: history, releases: releases)
    }

    /// The checkout folder of an app.
    public func checkoutPath(_ app: String) -> String { "\(stateDirectory)/repos/\(app)" }

    public func run(_ deployment: Deployment, app: AppConfig, progress: DeploymentProgress) async throws -> RolloutOutcome {
        do {
            return try await steps(deployment, app: app, progress: progress)
        } catch {
            let record = try? await rollbackTargets.history.deployment(app: app.name, id: deployment.id)
            let context = HookContext(deploymentID: deployment.id, app: app.name, version: record?.version, commit: record?.commit)
            do {
                try await hooks.run(.onFailure, app: app, context: context, log: progress.log)
            } catch let hookError {
                progress.log.line("on_failure hook failed: \(hookError)")
            }
            throw error
        }
    }

    private func steps(_ deployment: Deployment, app: AppConfig, progress: DeploymentProgress) async throws -> RolloutOutcome {
        switch deployment.kind {
        case .deploy:
            try await progress.enter(.fetching)
            let branch = deployment.trigger.ref.flatMap { $0.hasPrefix("refs/heads/") ? String($0.dropFirst(11)) : $0 }
            // A webhook means "this branch moved": it deploys the branch head as it is now, never the commit it
            // named (an old push replayed, or redelivered late, must not move production back). An older commit
            // goes live only through an authenticated `deploy --commit` or a rollback.
            let fromWebhook = deployment.trigger.source != .manual
            let request = FetchRequest(app: app.name, repository: app.repository, checkoutPath: checkoutPath(app.name),
                                       branch: branch, commit: fromWebhook ? nil : deployment.trigger.commit)
            let source = try await fetcher.fetch(request, log: progress.log)
            try await progress.record { $0.commit = source.commit }
            if fromWebhook, let named = deployment.trigger.commit, named != source.commit {
                progress.log.line("the push named \(named.prefix(12)); the head of \(branch ?? app.repository.branch) is \(source.commit.prefix(12)) now: deploying the head")
            }
            if fromWebhook, let live = await rollbackTargets.liveInstance(app: app.name), live.commit == source.commit {
                let note = "commit \(source.commit.prefix(12)) is already live as \(live.version): nothing built or restarted"
                progress.log.line(note)
                try await progress.record {
                    $0.version = live.version
                    $0.note = note
                }
                return .live
            }
            try Task.checkCancellation()
            try await progress.enter(.building)
            try await hooks.run(.beforeBuild, app: app, context: HookContext(deploymentID: deployment.id, app: app.name, commit: source.commit),
                                log: progress.log)
            let release = try await builder.build(
                BuildRequest(app: app.name, checkoutPath: source.checkoutPath, commit: source.commit, build: app.build,
                             deploymentID: deployment.id),
                log: progress.log)
            try await progress.record { $0.version = release.version }
            progress.log.line("release \(release.version) stored (built in \(String(format: "%.1f", release.buildSeconds)) s)")
            await pruneReleases(app, keeping: release.version, log: progress.log)
            do {
                try await hooks.run(.afterBuild, app: app, context: HookContext(deploymentID: deployment.id, app: app.name,
                                                                                 version: release.version, commit: release.commit),
                                    log: progress.log)
            } catch {
                progress.log.line("after_build hook failed (the deployment goes on): \(error)")
            }
            try Task.checkCancellation()
            return try await rollout.rollOut(release, app: app, progress: progress)
        case .rollback:
            if let (cut, live) = await canaryCut(by: deployment, app: app) {
                // Asked for during a canary step: taking the canary back was the whole rollback. Going on to the release
                // before the stable one would roll back twice.
                let note = "deployment \(cut.id) (\(cut.version ?? "its release")) was taken back during a canary step, before it took every "
                    + "request; \(live) served throughout and stays live: nothing more to roll back"
                progress.log.line(note)
                try await progress.record {
                    $0.version = live
                    $0.note = note
                }
                return .live
            }
            let release = try await rollbackTargets.target(app: app, requested: deployment.rollbackTo, rollback: deployment.id)
            try await progress.record {
                $0.version = release.version
                $0.commit = release.commit
            }
            progress.log.line("rolling back to \(release.version) (commit \(release.commit.prefix(12)))")
            return try await rollout.rollOut(release, app: app, progress: progress)
        case .restart:
            // Supervision records its restarts itself; one is never queued.
            throw DeployError.notAvailable(step: "queueing a restart")
        }
    }
}

extension Deployer {
    /// The canary deployment `rollback` (one without a target) cut short before its release took every request, and the
    /// version that stayed live; nil when the rollback has more to do.
    func canaryCut(by rollback: Deployment, app: AppConfig) async -> (Deployment, live: String)? {
        guard app.strategy.canaryPlan != nil, rollback.rollbackTo == nil else { return nil }
        let history = rollbackTargets.history
        let summaries = await history.summaries(app: app.name)
        guard let last = summaries.last(where: { $0.kind == .deploy && $0.id < rollback.id }),
              let cut = try? await history.deployment(app: app.name, id: last.id), cut.status == .rolledBack,
              cut.error?.hasPrefix("rolled back by deployment \(rollback.id) during ") == true else { return nil }
        guard let live = await rollbackTargets.liveVersion(app: app.name, history: { summaries }), live != cut.version else { return nil }
        return (cut, live)
    }

    /// Keeps the newest `keep_releases` releases; the live one, the rollback target and the new one are never removed.
    func pruneReleases(_ app: AppConfig, keeping new: String, log: any DeploymentLog) async {
        var protected = await rollbackTargets.protectedVersions(app: app.name)
        protected.insert(new)
        do {
            let removed = try await releases.prune(app: app.name, keep: app.keepReleases, protecting: protected)
            if !removed.isEmpty { log.line("retention: removed release(s) \(removed.joined(separator: ", ")) (keep_releases: \(app.keepReleases))") }
        } catch {
            log.line("retention: could not prune old releases: \(error)")
        }
    }
}
