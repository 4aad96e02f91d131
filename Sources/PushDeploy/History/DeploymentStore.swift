import Dispatch
import Foundation

/// The deployment history: `deployments/<app>/NNNNNN.json` and its `.log`, one file per deployment.
///
/// Every record is rewritten atomically at every phase, so a crash leaves the last phase written.
/// Writes that arrive together are committed together (one fsync round for the batch): a flood of
/// webhooks costs one disk flush per batch, not one per request, and every caller still returns only
/// once its record is on disk.
public actor DeploymentStore {
    /// The `deployments` folder under the state directory.
    public nonisolated let root: String
    private var ids: [String: [Int]] = [:]
    private var deliveries: [String: Int] = [:]
    private var cache: [String: Deployment] = [:]
    private var opened: Set<String> = []
    private var pending: [(path: String, data: Data)] = []
    private var pendingWaiters: [CheckedContinuation<Void, any Error>] = []
    private var isFlushing = false
    /// Disk writes run here, off the cooperative thread pool: an fsync blocks for milliseconds.
    private static let disk = DispatchQueue(label: "pushdeploy.history.disk")
    /// Records that could not be read at start-up; their ids stay taken and the server starts anyway.
    public private(set) var unreadableRecords: [String] = []

    public init(stateDirectory: String) {
        root = stateDirectory + "/deployments"
    }

    /// Reads the history of `apps`, closes every unfinished deployment as `interrupted`, and returns those.
    @discardableResult
    public func open(apps: [String], at date: Date = Date()) async throws -> [Deployment] {
        var interrupted: [Deployment] = []
        for app in apps {
            let folder = directory(app)
            try AtomicFile.makeDirectory(folder)
            let names = try FileManager.default.contentsOfDirectory(atPath: folder)
            var found: [Int] = []
            // A writer killed between create and rename leaves its temporary file; the record itself is whole.
            for name in names where name.hasPrefix(".") && name.hasSuffix(".tmp") {
                try? FileManager.default.removeItem(atPath: "\(folder)/\(name)")
            }
            for name in names where name.hasSuffix(".json") && !name.hasPrefix(".") {
                guard let id = Int(name.dropLast(5)) else { continue }
                found.append(id)
                var deployment: Deployment
                do {
                    deployment = try read(app: app, id: id)
                } catch {
                    unreadableRecords.append(recordPath(app: app, id: id))
                    continue
                }
                if let delivery = deliveryKey(deployment) { deliveries[delivery] = id }
                if !deployment.status.isFinished {
                    deployment.finish(.interrupted, error: "pushdeploy stopped during \(deployment.status.rawValue)", at: date)
                    try await write(deployment)
                    interrupted.append(deployment)
                }
            }
            ids[app] = found.sorted()
            opened.insert(app)
        }
        return interrupted
    }

    /// Records a new deployment as `queued`; a repeated delivery id returns the first deployment and `false`.
    public func create(app: String, kind: DeploymentKind, trigger: Trigger, strategy: String,
                       at date: Date = Date()) async throws -> (deployment: Deployment, isNew: Bool) {
        guard opened.contains(app) else { throw HistoryError.notOpened(app: app) }
        var probe = Deployment(id: 0, app: app, kind: kind, trigger: trigger, strategy: strategy, createdAt: date)
        if let key = deliveryKey(probe), let first = deliveries[key], let existing = try deployment(app: app, id: first) {
            return (existing, false)
        }
        var id = (ids[app]?.last ?? 0) + 1
        // Never overwrite a record, even one written behind pushdeploy's back.
        while FileManager.default.fileExists(atPath: recordPath(app: app, id: id)) { id += 1 }
        probe.id = id
        try AtomicFile.makeDirectory(directory(app))
        ids[app, default: []].append(id)
        if let key = deliveryKey(probe) { deliveries[key] = id }
        do {
            try await write(probe)
        } catch {
            ids[app]?.removeAll { $0 == id }
            if let key = deliveryKey(probe) { deliveries[key] = nil }
            cache[key(app, id)] = nil
            throw error
        }
        return (probe, true)
    }

    /// Rewrites a deployment's record.
    public func save(_ deployment: Deployment) async throws {
        try await write(deployment)
    }

    /// Loads a deployment, changes it in `change`, and saves it only if `change` did not throw.
    @discardableResult
    public func update(app: String, id: Int, _ change: (inout Deployment) throws -> Void) async throws -> Deployment {
        guard var deployment = try deployment(app: app, id: id) else {
            throw HistoryError.notFound(app: app, id: id)
        }
        try change(&deployment)
        try await write(deployment)
        return deployment
    }

    /// One deployment, or nil when there is none with that id.
    public func deployment(app: String, id: Int) throws -> Deployment? {
        if let cached = cache[key(app, id)] { return cached }
        guard ids[app]?.contains(id) == true else { return nil }
        return try read(app: app, id: id)
    }

    /// The newest deployments first, at most `limit`.
    public func list(app: String, limit: Int = 50) throws -> [Deployment] {
        var result: [Deployment] = []
        for id in (ids[app] ?? []).reversed() where result.count < limit {
            // An unreadable record (reported at start-up) must not hide the rest of the history.
            if let deployment = try? deployment(app: app, id: id) { result.append(deployment) }
        }
        return result
    }

    /// Every deployment of `app`, oldest first.
    public func all(app: String) -> [Deployment] {
        (ids[app] ?? []).compactMap { try? deployment(app: app, id: $0) }
    }

    /// The path of a deployment's log file.
    public nonisolated func logPath(app: String, id: Int) -> String {
        "\(directory(app))/\(Self.fileName(id)).log"
    }

    /// Opens a deployment's log for appending.
    public nonisolated func log(app: String, id: Int) throws -> FileDeploymentLog {
        try FileDeploymentLog(path: logPath(app: app, id: id))
    }

    /// The path of a deployment's JSON record.
    public nonisolated func recordPath(app: String, id: Int) -> String {
        "\(directory(app))/\(Self.fileName(id)).json"
    }

    /// Writes a record to `path` atomically: what a reader finds there is the old record or the new one.
    public static func writeRecord(_ deployment: Deployment, to path: String) throws {
        try AtomicFile.write(JSONEncoder.pushDeploy.encode(deployment), to: path)
    }

    static func fileName(_ id: Int) -> String {
        let digits = String(id)
        return String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    private nonisolated func directory(_ app: String) -> String { "\(root)/\(app)" }

    private func key(_ app: String, _ id: Int) -> String { "\(app)/\(id)" }

    /// Keeps a record in memory; past a few hundred, finished ones are dropped and read from disk when asked for.
    private func remember(_ deployment: Deployment) {
        cache[key(deployment.app, deployment.id)] = deployment
        if cache.count > 256 {
            cache = cache.filter { !$0.value.status.isFinished }
        }
    }

    private func deliveryKey(_ deployment: Deployment) -> String? {
        deployment.trigger.deliveryId.map { "\(deployment.app)/\(deployment.trigger.source.rawValue)/\($0)" }
    }

    private func read(app: String, id: Int) throws -> Deployment {
        let path = recordPath(app: app, id: id)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw HistoryError.unreadable(path: path, reason: "cannot read the file")
        }
        do {
            let deployment = try JSONDecoder.pushDeploy.decode(Deployment.self, from: data)
            remember(deployment)
            return deployment
        } catch {
            throw HistoryError.unreadable(path: path, reason: "\(error)")
        }
    }

    /// Changes a record and queues it for the next batch without waiting for the disk.
    ///
    /// For bookkeeping a request need not wait for (a waiting deployment marked `superseded`): should
    /// pushdeploy die before the batch lands, the record still says `queued` and is closed `interrupted` at start-up.
    public func updateSoon(app: String, id: Int, _ change: (inout Deployment) -> Void) {
        guard var deployment = try? deployment(app: app, id: id) else { return }
        change(&deployment)
        guard let data = try? JSONEncoder.pushDeploy.encode(deployment) else { return }
        remember(deployment)
        pending.append((recordPath(app: app, id: id), data))
        startFlushing()
    }

    /// Queues the record for the next batch and returns once that batch is on disk.
    private func write(_ deployment: Deployment) async throws {
        let data = try JSONEncoder.pushDeploy.encode(deployment)
        remember(deployment)
        let path = recordPath(app: deployment.app, id: deployment.id)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            pending.append((path, data))
            pendingWaiters.append(continuation)
            startFlushing()
        }
    }

    private func startFlushing() {
        guard !isFlushing else { return }
        isFlushing = true
        Task { await self.flush() }
    }

    /// Writes batches until none is left; what arrives during a batch goes into the next one.
    private func flush() async {
        while !pending.isEmpty {
            let batch = pending
            let waiters = pendingWaiters
            pending = []
            pendingWaiters = []
            let result: Result<Void, any Error> = await withCheckedContinuation { continuation in
                Self.disk.async {
                    continuation.resume(returning: Result { try AtomicFile.write(batch) })
                }
            }
            for waiter in waiters { waiter.resume(with: result) }
        }
        isFlushing = false
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
