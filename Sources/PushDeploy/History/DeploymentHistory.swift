import Foundation

/// The deployment history of every app: one record per deployment, its log, and a small index.
///
/// Every change is saved before the call returns, so what the API answers is what a reader of the
/// record finds. The file implementation is ``FileDeploymentHistory``; ``MemoryDeploymentHistory`` is for unit tests.
public protocol DeploymentHistory: Sendable {
    /// Reads the index of each app and closes every unfinished deployment as `interrupted`; returns those.
    func open(apps: [AppHistorySettings], at date: Date) async throws -> [Deployment]

    /// Records a new deployment as `queued`; a repeated delivery id returns the first deployment and `isNew` false.
    func create(app: String, kind: DeploymentKind, trigger: Trigger, strategy: String,
                at date: Date) async throws -> (deployment: Deployment, isNew: Bool)

    /// Loads a deployment, changes it in `change`, and saves it only if `change` did not throw.
    @discardableResult
    func update(app: String, id: Int, _ change: @Sendable (inout Deployment) throws -> Void) async throws -> Deployment

    /// One deployment, or nil when there is none with that id.
    func deployment(app: String, id: Int) async throws -> Deployment?

    /// The newest deployments first, at most `limit`; reads only those records.
    func list(app: String, limit: Int) async throws -> [Deployment]

    /// The index of an app, oldest first: what `/status`, rollback and retention decide on without reading records.
    func summaries(app: String) async -> [DeploymentSummary]

    /// Opens a deployment's log for appending.
    func log(app: String, id: Int) async throws -> any DeploymentLog

    /// A deployment's log from byte `offset` on; `cut` when the log was shortened since (read it again from 0).
    func readLog(app: String, id: Int, from offset: Int) async -> LogChunk

    /// Records that could not be read at start-up; their ids stay taken.
    func unreadableRecords() async -> [String]
}

extension DeploymentHistory {
    /// Reads the history of `apps` with the default retention.
    @discardableResult
    public func open(apps: [String], at date: Date = Date()) async throws -> [Deployment] {
        try await open(apps: apps.map { AppHistorySettings(app: $0) }, at: date)
    }

    @discardableResult
    public func open(apps: [AppHistorySettings]) async throws -> [Deployment] {
        try await open(apps: apps, at: Date())
    }

    public func create(app: String, kind: DeploymentKind, trigger: Trigger,
                       strategy: String) async throws -> (deployment: Deployment, isNew: Bool) {
        try await create(app: app, kind: kind, trigger: trigger, strategy: strategy, at: Date())
    }

    public func list(app: String) async throws -> [Deployment] {
        try await list(app: app, limit: 50)
    }
}

/// How much history an app keeps.
public struct AppHistorySettings: Sendable, Equatable {
    public var app: String
    /// Deployments kept; older ones go, oldest first, but never the live release's or the rollback target's.
    public var keepHistory: Int
    /// The most a deployment log grows to; past it the start is cut and the tail kept.
    public var logMaxBytes: Int

    public static let defaultKeepHistory = 1000
    public static let defaultLogMaxBytes = 10 << 20

    public init(app: String, keepHistory: Int = defaultKeepHistory, logMaxBytes: Int = defaultLogMaxBytes) {
        self.app = app
        self.keepHistory = keepHistory
        self.logMaxBytes = logMaxBytes
    }

    public init(_ app: AppConfig) {
        self.init(app: app.name, keepHistory: app.keepHistory, logMaxBytes: app.logMaxBytes)
    }
}

/// One line of an app's history index: what decisions need, without the record.
public struct DeploymentSummary: Codable, Sendable, Equatable {
    public var id: Int
    public var kind: DeploymentKind
    public var status: DeploymentStatus
    public var version: String?
    public var commit: String?
    /// `<source>/<delivery id>` of the push, to answer a redelivery with the first deployment.
    public var delivery: String?
    public var createdAt: Date
    public var finishedAt: Date?

    public init(_ deployment: Deployment) {
        id = deployment.id
        kind = deployment.kind
        status = deployment.status
        version = deployment.version
        commit = deployment.commit
        delivery = Self.deliveryKey(deployment.trigger)
        createdAt = deployment.createdAt
        finishedAt = deployment.finishedAt
    }

    static func deliveryKey(_ trigger: Trigger) -> String? {
        trigger.deliveryId.map { "\(trigger.source.rawValue)/\($0)" }
    }
}

extension Array where Element == DeploymentSummary {
    /// The release nginx serves as far as the history knows: the version of the last deployment that succeeded.
    /// A restart brings back what ran, so it never names the live release.
    public var liveVersion: String? {
        last { $0.status == .succeeded && $0.kind != .restart && $0.version != nil }?.version
    }

    /// The newest successful release other than `live`: where a rollback goes by default.
    public func rollbackVersion(live: String?) -> String? {
        last { $0.status == .succeeded && $0.kind != .restart && $0.version != nil && $0.version != live }?.version
    }
}

/// Part of a deployment log, read from an offset.
public struct LogChunk: Sendable, Equatable {
    public var data: Data
    /// Where the next read starts.
    public var nextOffset: Int
    /// The log was cut (its start dropped) since the offset was taken: `data` is the log from its new start.
    public var cut: Bool

    public init(data: Data, nextOffset: Int, cut: Bool = false) {
        self.data = data
        self.nextOffset = nextOffset
        self.cut = cut
    }
}

/// A history record that cannot be found or read.
public enum HistoryError: Error, CustomStringConvertible, Equatable {
    case notFound(app: String, id: Int)
    case unreadable(path: String, reason: String)
    case notOpened(app: String)

    public var description: String {
        switch self {
        case let .notFound(app, id): "app \(app) has no deployment \(id)"
        case let .unreadable(path, reason): "cannot read deployment record \(path): \(reason)"
        case let .notOpened(app): "the history of \(app) was not opened"
        }
    }
}
