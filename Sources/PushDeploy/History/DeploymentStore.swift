#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation

/// The deployment history: `deployments/<app>/NNNNNN.json` and its `.log`, one file per deployment.
///
/// Every record is rewritten atomically at every phase, so a crash leaves the last phase written.
/// Writes that arrive together are committed together through the journal (`RecordJournal`): one append
/// and one flush per batch, not one per record, and every caller still returns only once its record is
/// durable and its file replaced.
public actor DeploymentStore {
    /// The `deployments` folder under the state directory.
    public nonisolated let root: String
    private var ids: [String: [Int]] = [:]
    /// The first deployment of each delivery id, to answer a redelivery with it.
    private var deliveries = DeliveryIndex()
    private var cache: [String: Deployment] = [:]
    private var opened: Set<String> = []
    /// Records to write in the next batch; encoded on the disk queue, once per path.
    private var pending: [(path: String, deployment: Deployment)] = []
    private var pendingWaiters: [CheckedContinuation<Void, any Error>] = []
    /// New records in `pending`: forgotten again if their batch fails.
    private var pendingCreates: [Deployment] = []
    /// The batch `pending` becomes; every batch up to `flushedBatches` is written or failed.
    private var nextBatch = 1
    private var flushedBatches = 0
    /// Those waiting for the batch being written now.
    private var flyingWaiters: [CheckedContinuation<Void, any Error>] = []
    /// Why recent batches failed, for a `written(_:)` that asks after the fact.
    private var batchFailures: [Int: any Error] = [:]
    /// The batch of each new record not on disk yet, by `key(app, id)`.
    private var unwritten: [String: Int] = [:]
    private var isFlushing = false
    /// Disk writes run here, off the cooperative thread pool: an fsync blocks for milliseconds.
    private static let disk = DispatchQueue(label: "pushdeploy.history.disk")
    /// Records that could not be read at start-up; their ids stay taken and the server starts anyway.
    public private(set) var unreadableRecords: [String] = []

    private let journal: RecordJournal
    private var recovered = false

    /// `materializeDelay`: how long after the journal a record file is replaced (tests stretch it to mimic a crash).
    public init(stateDirectory: String, materializeDelay: DispatchTimeInterval = .milliseconds(20)) {
        root = stateDirectory + "/deployments"
        journal = RecordJournal(directory: root, queue: Self.disk, materializeDelay: materializeDelay)
    }

    /// Reads the history of `apps`, closes every unfinished deployment as `interrupted`, and returns those.
    @discardableResult
    public func open(apps: [String], at date: Date = Date()) async throws -> [Deployment] {
        var interrupted: [Deployment] = []
        if !recovered {
            // What the journal holds beyond the record files (a crash before a checkpoint) goes back into them first.
            try await onDisk { [journal] in try journal.recover() }
            recovered = true
        }
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
                if let delivery = deliveryKey(deployment) { deliveries.insert(delivery, id: id) { _ in nil } }
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
    /// Returns once the record is on disk.
    public func create(app: String, kind: DeploymentKind, trigger: Trigger, strategy: String,
                       at date: Date = Date()) async throws -> (deployment: Deployment, isNew: Bool) {
        let recorded = try record(app: app, kind: kind, trigger: trigger, strategy: strategy, at: date)
        try await written(recorded)
        return (recorded.deployment, recorded.isNew)
    }

    /// Records a new deployment as `queued` in the next batch and returns at once; `written(_:)` waits for the disk.
    ///
    /// The deploy queue uses it to queue a push before its record lands, so that a push following in the same
    /// batch marks it `superseded` in that batch: under a flood every push costs one file write, not two.
    /// A repeated delivery id returns the first deployment and `isNew` false.
    public func record(app: String, kind: DeploymentKind, trigger: Trigger, strategy: String,
                       at date: Date = Date()) throws -> Recorded {
        guard opened.contains(app) else { throw HistoryError.notOpened(app: app) }
        var probe = Deployment(id: 0, app: app, kind: kind, trigger: trigger, strategy: strategy, createdAt: date)
        if let key = deliveryKey(probe),
           let first = try deliveries.first(for: key, deliveryOf: { id in try deployment(app: app, id: id).flatMap(deliveryKey) }),
           let existing = try deployment(app: app, id: first) {
            return Recorded(deployment: existing, isNew: false, batch: unwritten[self.key(app, first)] ?? 0)
        }
        var id = (ids[app]?.last ?? 0) + 1
        // Never overwrite a record, even one written behind pushdeploy's back.
        while access(recordPath(app: app, id: id), F_OK) == 0 { id += 1 }
        probe.id = id
        if ids[app]?.isEmpty ?? true { try AtomicFile.makeDirectory(directory(app)) }
        ids[app, default: []].append(id)
        if let key = deliveryKey(probe) {
            deliveries.insert(key, id: id) { [self] other in try? deployment(app: app, id: other).flatMap(deliveryKey) }
        }
        remember(probe)
        unwritten[key(app, id)] = nextBatch
        pendingCreates.append(probe)
        pending.append((recordPath(app: app, id: id), probe))
        startFlushing()
        return Recorded(deployment: probe, isNew: true, batch: nextBatch)
    }

    /// Returns once every write asked for so far, `updateSoon` included, is on disk.
    /// Their files are replaced too (they otherwise follow a few milliseconds after the journal).
    public func sync() async throws {
        if isFlushing || !pending.isEmpty {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                if pending.isEmpty { flyingWaiters.append(continuation) } else { pendingWaiters.append(continuation) }
            }
        }
        try await onDisk { [journal] in try journal.materializeNow() }
    }

    /// How many record files were replaced since start-up: a record rewritten before its file was replaced
    /// counts once.
    public func recordFileWrites() async -> Int {
        (try? await onDisk { [journal] in journal.filesWritten }) ?? 0
    }

    /// Returns once the batch holding `recorded` is on disk; throws what failed the batch.
    public func written(_ recorded: Recorded) async throws {
        if recorded.batch <= flushedBatches {
            if let failure = batchFailures[recorded.batch] { throw failure }
            return
        }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            if recorded.batch == nextBatch {
                pendingWaiters.append(continuation)
            } else {
                flyingWaiters.append(continuation)
            }
        }
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
        guard let known = ids[app], Self.contains(known, id) else { return nil }
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

    /// Binary search: the ids of an app are kept ascending, and there can be tens of thousands.
    private static func contains(_ ids: [Int], _ id: Int) -> Bool {
        var low = 0, high = ids.count
        while low < high {
            let middle = (low + high) / 2
            if ids[middle] < id { low = middle + 1 } else { high = middle }
        }
        return low < ids.count && ids[low] == id
    }

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
        guard let data = journal.unmaterialized(path) ?? FileManager.default.contents(atPath: path) else {
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
        remember(deployment)
        pending.append((recordPath(app: app, id: id), deployment))
        startFlushing()
    }

    /// Queues the record for the next batch and returns once that batch is on disk.
    private func write(_ deployment: Deployment) async throws {
        remember(deployment)
        let path = recordPath(app: deployment.app, id: deployment.id)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            pending.append((path, deployment))
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
            let creates = pendingCreates
            let number = nextBatch
            flyingWaiters = pendingWaiters
            pending = []
            pendingWaiters = []
            pendingCreates = []
            nextBatch += 1
            let result: Result<Void, any Error>
            do {
                let newPaths = Set(creates.map { recordPath(app: $0.app, id: $0.id) })
                try await onDisk { [journal] in try journal.commit(Self.encode(batch, newPaths: newPaths)) }
                result = .success(())
            } catch {
                result = .failure(error)
            }
            flushedBatches = number
            for created in creates { unwritten[key(created.app, created.id)] = nil }
            if case let .failure(error) = result {
                batchFailures[number] = error
                batchFailures = batchFailures.filter { $0.key > number - 64 }
                // Their answers say the push was not recorded; a redelivery must be able to try again.
                for created in creates { forget(created) }
            }
            let waiters = flyingWaiters
            flyingWaiters = []
            for waiter in waiters { waiter.resume(with: result) }
        }
        isFlushing = false
    }

    /// The batch as files: each path once, with its last record.
    private static func encode(_ batch: [(path: String, deployment: Deployment)],
                               newPaths: Set<String>) -> [(path: String, data: Data, isNew: Bool)] {
        var last: [String: Int] = [:]
        for (index, entry) in batch.enumerated() { last[entry.path] = index }
        return batch.enumerated().filter { last[$0.element.path] == $0.offset }.map { _, entry in
            (entry.path, RecordJSON.encode(entry.deployment), newPaths.contains(entry.path))
        }
    }

    /// Runs a blocking file system job on the disk queue.
    private func onDisk<T: Sendable>(_ job: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Self.disk.async { continuation.resume(with: Result { try job() }) }
        }
    }

    /// Waits until the journal files retired so far are checkpointed (their records flushed, the files gone).
    func waitForCheckpoints() async {
        _ = try? await onDisk { [journal] in journal.waitForCheckpoints() }
    }

    /// Drops a new record whose batch failed (unless a later write put it on disk after all).
    private func forget(_ deployment: Deployment) {
        guard access(recordPath(app: deployment.app, id: deployment.id), F_OK) != 0 else { return }
        ids[deployment.app]?.removeAll { $0 == deployment.id }
        if let key = deliveryKey(deployment) { deliveries.remove(key, id: deployment.id) }
        cache[key(deployment.app, deployment.id)] = nil
    }
}

/// Delivery ids to deployment ids, held by a 64-bit hash of the key rather than the key itself: a history of
/// tens of thousands of pushes kept its keys in four times the memory. A hash that matches is confirmed against
/// the deployment's own record; a different key with the same hash (never seen in practice) is kept by name.
struct DeliveryIndex {
    private var byHash: [UInt64: Int] = [:]
    private var collided: [String: Int] = [:]
    private let hash: (String) -> UInt64

    /// `hash`: tests force collisions with a poor one.
    init(hash: @escaping (String) -> UInt64 = DeliveryIndex.sipHash) {
        self.hash = hash
    }

    /// The deployment recorded for `key`; `deliveryOf` gives the key of a deployment (from its record).
    func first(for key: String, deliveryOf: (Int) throws -> String?) rethrows -> Int? {
        if let id = collided[key] { return id }
        guard let id = byHash[hash(key)] else { return nil }
        return try deliveryOf(id) == key ? id : nil
    }

    /// Remembers `id` as the deployment of `key`, unless a deployment is remembered for it already.
    mutating func insert(_ key: String, id: Int, deliveryOf: (Int) -> String?) {
        let hash = hash(key)
        guard let existing = byHash[hash] else {
            byHash[hash] = id
            return
        }
        if existing != id, deliveryOf(existing) != key, collided[key] == nil { collided[key] = id }
    }

    mutating func remove(_ key: String, id: Int) {
        if collided[key] == id {
            collided[key] = nil
        } else if byHash[hash(key)] == id {
            byHash[hash(key)] = nil
        }
    }

    /// SipHash with the process's random seed: the index lives in memory only, and a sender cannot aim at it.
    static func sipHash(_ key: String) -> UInt64 {
        var hasher = Hasher()
        hasher.combine(key)
        return UInt64(bitPattern: Int64(hasher.finalize()))
    }
}

/// A record handed to the history: `DeploymentStore.written(_:)` waits until it is on disk.
public struct Recorded: Sendable {
    public let deployment: Deployment
    /// False for a repeated delivery: `deployment` is the first one recorded for it.
    public let isNew: Bool
    /// The write batch that holds it; 0 when it was on disk already.
    let batch: Int
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
