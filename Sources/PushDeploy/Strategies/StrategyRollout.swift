/// The rollout an app's config asks for: ``BlueGreenRollout`` (blue-green and canary) or ``RollingRollout`` over the same parts.
public struct StrategyRollout: Rollout {
    public var parts: RolloutParts

    public init(parts: RolloutParts) { self.parts = parts }

    public func rollOut(_ release: Release, app: AppConfig, progress: DeploymentProgress) async throws -> RolloutOutcome {
        switch app.strategy {
        case .blueGreen, .canary: try await BlueGreenRollout(parts: parts).rollOut(release, app: app, progress: progress)
        case .rolling: try await RollingRollout(parts: parts).rollOut(release, app: app, progress: progress)
        }
    }
}
