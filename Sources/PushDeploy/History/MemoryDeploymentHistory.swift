import Foundation

/// A deployment history kept in memory, for unit tests: the same rules as ``FileDeploymentHistory``, no files.
public actor MemoryDeploymentHistory: DeploymentHistory {
    private var records: [String: [Int: Deployment]] = [:]
    private var settings: [String: AppHistorySettings] = [:]
    private var logs: [String: MemoryDeploymentLog] = [:]

    public init() {}

    public func open(apps: [AppHistorySettings], at date: Date) throws -> [Deployment] {
        var interrupted: [Deployment] = []
        for app in apps {
            settings[app.app] = app
            for (id, deployment) in records[app.app] ?? [:] where !deployment.status.isFinished {
                var closed = deployment
                closed.finish(.interrupted, error: "pushdeploy stopped during \(deployment.status.rawValue)", at: date)
                records[app.app]?[id] = closed
                interrupted.append(closed)
            }
            if records[app.app] == nil { records[app.app] = [:] }
        }
        return interrupted.sorted { $0.id < $1.id }
    }

    public func create(app: String, kind: DeploymentKind, trigger: Trigger, strategy: String,
                       at date: Date) throws -> (deployment: Deployment, isNew: Bool) {
        guard let existing = records[app] else { throw HistoryError.notOpened(app: app) }
        if let key = DeploymentSummary.deliveryKey(trigger),
           let first = existing.values.filter({ DeploymentSummary.deliveryKey($0.trigger) == key }).min(by: { $0.id < $1.id }) {
            return (first, false)
        }
        let deployment = Deployment(id: (existing.keys.max() ?? 0) + 1, app: app, kind: kind, trigger: trigger,
                                    strategy: strategy, createdAt: date)
        records[app]?[deployment.id] = deployment
        prune(app)
        return (deployment, true)
    }

    @discardableResult
    public func update(app: String, id: Int, _ change: @Sendable (inout Deployment) throws -> Void) throws -> Deployment {
        guard var deployment = try deployment(app: app, id: id) else { throw HistoryError.notFound(app: app, id: id) }
        try change(&deployment)
        records[app]?[id] = deployment
        return deployment
    }

    public func deployment(app: String, id: Int) throws -> Deployment? {
        guard let existing = records[app] else { throw HistoryError.notOpened(app: app) }
        return existing[id]
    }

    public func list(app: String, limit: Int) throws -> [Deployment] {
        guard let existing = records[app] else { throw HistoryError.notOpened(app: app) }
        return Array(existing.values.sorted { $0.id > $1.id }.prefix(limit))
    }

    public func summaries(app: String) -> [DeploymentSummary] {
        (records[app] ?? [:]).values.sorted { $0.id < $1.id }.map(DeploymentSummary.init)
    }

    public func log(app: String, id: Int) -> any DeploymentLog {
        let key = "\(app)/\(id)"
        if let log = logs[key] { return log }
        let log = MemoryDeploymentLog()
        logs[key] = log
        return log
    }

    public func readLog(app: String, id: Int, from offset: Int) -> LogChunk {
        let data = Data((logs["\(app)/\(id)"]?.text ?? "").utf8)
        let start = data.count < offset ? 0 : offset
        return LogChunk(data: data.subdata(in: start..<data.count), nextOffset: data.count, cut: data.count < offset)
    }

    public func unreadableRecords() -> [String] { [] }

    private func prune(_ app: String) {
        let keep = settings[app]?.keepHistory ?? AppHistorySettings.defaultKeepHistory
        let summaries = summaries(app: app)
        guard summaries.count > keep else { return }
        let live = summaries.liveVersion
        let target = summaries.rollbackVersion(live: live)
        let protected = Set([live, target].compactMap { version in
            summaries.last { $0.status == .succeeded && $0.version == version && version != nil }?.id
        })
        var excess = summaries.count - keep
        for entry in summaries where excess > 0 && entry.status.isFinished && !protected.contains(entry.id) {
            records[app]?[entry.id] = nil
            logs["\(app)/\(entry.id)"] = nil
            excess -= 1
        }
    }
}
