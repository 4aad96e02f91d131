import Foundation

/// Brings an app's checkout to an exact commit (libgit2 in production).
public protocol SourceFetcher: Sendable {
    /// Clones or fetches, then force-checks-out the requested commit (or the branch head) and returns what is checked out.
    func fetch(_ request: FetchRequest, log: any DeploymentLog) async throws -> FetchedSource
}

/// What to fetch: the repository, the branch, and optionally an exact commit.
public struct FetchRequest: Sendable {
    public var app: String
    public var repository: RepositoryConfig
    /// Where the checkout lives: `repos/<app>`.
    public var checkoutPath: String
    /// The branch to follow when no commit is named; defaults to the repository's branch.
    public var branch: String
    /// An exact commit id (full or abbreviated); nil means the head of `branch` on the remote.
    public var commit: String?

    public init(app: String, repository: RepositoryConfig, checkoutPath: String, branch: String? = nil, commit: String? = nil) {
        self.app = app
        self.repository = repository
        self.checkoutPath = checkoutPath
        self.branch = branch ?? repository.branch
        self.commit = commit
    }
}

/// The checkout after a fetch.
public struct FetchedSource: Sendable, Equatable {
    /// The full 40-character id of the commit checked out.
    public var commit: String
    public var checkoutPath: String
    /// The commit's one-line summary.
    public var summary: String?

    public init(commit: String, checkoutPath: String, summary: String? = nil) {
        self.commit = commit
        self.checkoutPath = checkoutPath
        self.summary = summary
    }
}

/// Builds a checkout into a stored, versioned release (Gradle `bootJar` in production).
public protocol ReleaseBuilder: Sendable {
    /// Runs the build, stores the jar and its `release.json`, and returns the release.
    func build(_ request: BuildRequest, log: any DeploymentLog) async throws -> Release
}

/// What to build.
public struct BuildRequest: Sendable {
    public var app: String
    public var checkoutPath: String
    public var commit: String
    public var build: BuildConfig
    /// The deployment the build belongs to, for the environment and the log.
    public var deploymentID: Int

    public init(app: String, checkoutPath: String, commit: String, build: BuildConfig, deploymentID: Int) {
        self.app = app
        self.checkoutPath = checkoutPath
        self.commit = commit
        self.build = build
        self.deploymentID = deploymentID
    }
}

/// Puts a release live and takes it back (nginx blue-green or rolling in production).
public protocol Rollout: Sendable {
    /// Starts `release`, checks its health, switches traffic to it and watches it; reports each phase to `progress`.
    func rollOut(_ release: Release, app: AppConfig, progress: DeploymentProgress) async throws -> RolloutOutcome
}

/// How a rollout ended when it did not throw.
public enum RolloutOutcome: Sendable, Equatable {
    /// The new release is live.
    case live
    /// The new release turned unhealthy during the watch and traffic went back to the previous one.
    case rolledBack(reason: String)
}

/// A step that is not built yet: it fails every deployment that reaches it with a clear reason.
public struct UnavailableStep: SourceFetcher, ReleaseBuilder, Rollout {
    public var step: String

    public init(step: String) { self.step = step }

    public func fetch(_ request: FetchRequest, log: any DeploymentLog) async throws -> FetchedSource {
        throw DeployError.notAvailable(step: step)
    }

    public func build(_ request: BuildRequest, log: any DeploymentLog) async throws -> Release {
        throw DeployError.notAvailable(step: step)
    }

    public func rollOut(_ release: Release, app: AppConfig, progress: DeploymentProgress) async throws -> RolloutOutcome {
        throw DeployError.notAvailable(step: step)
    }
}

/// Why a deployment could not go on.
public enum DeployError: Error, Sendable, Equatable, CustomStringConvertible {
    case notAvailable(step: String)
    case unknownApp(String)
    case noRollbackTarget(app: String, reason: String, available: [String])
    /// A rollback `to` that names neither a deployment nor a stored version; refused before anything is queued.
    case invalidRollbackTarget(app: String, target: String, reason: String, available: [String] = [])

    public var description: String {
        switch self {
        case let .notAvailable(step): "\(step) is not available in this version of pushdeploy"
        case let .unknownApp(name): "no app named \(name)"
        case let .invalidRollbackTarget(app, target, reason, available):
            "cannot roll \(app) back to \"\(target)\": \(reason)"
                + (available.isEmpty ? "" : "; releases one can roll back to: \(available.joined(separator: ", "))")
        case let .noRollbackTarget(app, reason, available):
            available.isEmpty
                ? "cannot roll back \(app): \(reason); no stored release to roll back to"
                : "cannot roll back \(app): \(reason); releases one can roll back to: \(available.joined(separator: ", "))"
        }
    }
}
