import Foundation
import Synchronization

/// The deployment history on disk: `deployments/<app>/NNNNNN.json` and `.log` per deployment, and an `index.json`.
///
/// Each app's records belong to one ``AppRecords`` actor, which runs on a dispatch queue of its own: its file
/// writes block (fsync) and must stay off the cooperative pool and the server's event loops. Every change is one
/// atomic write of the record (temporary file, fsync, rename, fsync of the folder) with ``JSONEncoder/pushDeploy``
/// before the call returns. The index follows each record; it is only an accelerator: at start-up the records
/// written after it are read again, so a lost index write costs nothing but a read.
public final class FileDeploymentHistory: DeploymentHistory {
    /// The `deployments` folder under the state directory.
    public let root: String
    private let apps = Mutex<[String: AppRecords]>([:])

    public init(stateDirectory: String) {
        root = stateDirectory + "/deployments"
    }

    public func open(apps settings: [AppHistorySettings], at date: Date) async throws -> [Deployment] {
        var interrupted: [Deployment] = []
        for app in settings {
            let records = self.apps.withLock { apps in
                if let existing = apps[app.app] { return existing }
                let created = AppRecords(folder: "\(root)/\(app.app)", app: app.app)
                apps[app.app] = created
                return created
            }
            interrupted += try await records.open(settings: app, at: date)
        }
        return interrupted
    }

    public func create(app: String, kind: DeploymentKind, trigger: Trigger, strategy: String,
                       at date: Date) async throws -> (deployment: Deployment, isNew: Bool) {
        try await records(app).create(kind: kind, trigger: trigger, strategy: strategy, at: date)
    }

    @discardableResult
    public func update(app: String, id: Int, _ change: @Sendable (inout Deployment) throws -> Void) async throws -> Deployment {
        try await records(app).update(id: id, change)
    }

    public func deployment(app: String, id: Int) async throws -> Deployment? {
        try await records(app).deployment(id: id)
    }

    public func list(app: String, limit: Int) async throws -> [Deployment] {
        try await records(app).list(limit: limit)
    }

    public func summaries(app: String) async -> [DeploymentSummary] {
        (try? await records(app).summaries()) ?? []
    }

    public func log(app: String, id: Int) async throws -> any DeploymentLog {
        try await records(app).log(id: id)
    }

    public func readLog(app: String, id: Int, from offset: Int) async -> LogChunk {
        guard let records = try? records(app) else { return LogChunk(data: Data(), nextOffset: offset) }
        return FileDeploymentLog.read(path: records.logPath(id), from: offset)
    }

    public func unreadableRecords() async -> [String] {
        var found: [String] = []
        for records in apps.withLock({ Array($0.values) }) { found += await records.unreadable }
        return found.sorted()
    }

    /// The path of a deployment's JSON record.
    public func recordPath(app: String, id: Int) -> String {
        "\(root)/\(app)/\(AppRecords.fileName(id)).json"
    }

    /// The path of a deployment's log.
    public func logPath(app: String, id: Int) -> String {
        "\(root)/\(app)/\(AppRecords.fileName(id)).log"
    }

    private func records(_ app: String) throws -> AppRecords {
        guard let records = apps.withLock({ $0[app] }) else { throw HistoryError.notOpened(app: app) }
        return records
    }
}
