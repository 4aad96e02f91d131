#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The records of one app: the only writer of `deployments/<app>/`.
///
/// It runs on its own dispatch queue (see ``DispatchQueueExecutor``), so its methods may block on the disk and
/// no two of them ever interleave: a change is on disk before the next one starts.
actor AppRecords {
    let folder: String
    let app: String
    private let executor: DispatchQueueExecutor
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    private var settings: AppHistorySettings
    /// Oldest first, ascending ids.
    private var index: [DeploymentSummary] = []
    /// The first deployment of each `<source>/<delivery id>`.
    private var deliveries: [String: Int] = [:]
    /// Unfinished deployments and the last few read or written.
    private var cache: [Int: Deployment] = [:]
    /// The highest id seen, in the index or as a file name (an unreadable record keeps its id).
    private var highestID = 0
    private var isOpen = false
    private(set) var unreadable: [String] = []

    init(folder: String, app: String) {
        self.folder = folder
        self.app = app
        settings = AppHistorySettings(app: app)
        executor = DispatchQueueExecutor(label: "pushdeploy.history.\(app)")
    }

    static func fileName(_ id: Int) -> String {
        let digits = String(id)
        return String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    nonisolated func recordPath(_ id: Int) -> String { "\(folder)/\(Self.fileName(id)).json" }
    nonisolated func logPath(_ id: Int) -> String { "\(folder)/\(Self.fileName(id)).log" }
    private nonisolated var indexPath: String { "\(folder)/index.json" }

    // MARK: Start-up

    /// Reads the index, then only the records it cannot vouch for: those missing from it, those written after
    /// it, and unfinished ones (closed as `interrupted`, which is returned).
    func open(settings: AppHistorySettings, at date: Date) throws -> [Deployment] {
        self.settings = settings
        try AtomicFile.makeDirectory(folder)
        let names = try FileManager.default.contentsOfDirectory(atPath: folder)
        // A writer killed between create and rename leaves its temporary file; the record itself is whole.
        for name in names where name.hasPrefix(".") && name.hasSuffix(".tmp") {
            unlink("\(folder)/\(name)")
        }
        let fileIDs = Set(names.compactMap { name -> Int? in
            guard name.hasSuffix(".json"), !name.hasPrefix(".") else { return nil }
            return Int(name.dropLast(5))
        })
        let stored = readIndex()
        let indexTime = modificationTime(indexPath)
        var summaries: [Int: DeploymentSummary] = [:]
        for entry in stored?.entries ?? [] where fileIDs.contains(entry.id) { summaries[entry.id] = entry }
        unreadable = []
        var changed = stored == nil
        for id in fileIDs.sorted() {
            let known = summaries[id]
            // The index is written after its record: a record as new as the index may be newer than its entry.
            let stale = known == nil || !(known!.status.isFinished) || (modificationTime(recordPath(id)) ?? .infinity) >= (indexTime ?? 0)
            guard stale else { continue }
            do {
                let deployment = try read(id)
                if summaries[id] != DeploymentSummary(deployment) { changed = true }
                summaries[id] = DeploymentSummary(deployment)
            } catch {
                summaries[id] = nil
                unreadable.append(recordPath(id))
            }
        }
        index = summaries.values.sorted { $0.id < $1.id }
        highestID = max(fileIDs.max() ?? 0, stored?.highestId ?? 0)
        deliveries = [:]
        for entry in index {
            if let key = entry.delivery, deliveries[key] == nil { deliveries[key] = entry.id }
        }
        isOpen = true
        var interrupted: [Deployment] = []
        for entry in index where !entry.status.isFinished {
            var deployment = try read(entry.id)
            deployment.finish(.interrupted, error: "pushdeploy stopped during \(deployment.status.rawValue)", at: date)
            try save(deployment)
            interrupted.append(deployment)
            changed = true
        }
        if changed || stored?.entries.count != index.count { writeIndex() }
        return interrupted
    }

    // MARK: Changes

    func create(kind: DeploymentKind, trigger: Trigger, strategy: String,
                at date: Date) throws -> (deployment: Deployment, isNew: Bool) {
        guard isOpen else { throw HistoryError.notOpened(app: app) }
        if let key = DeploymentSummary.deliveryKey(trigger), let first = deliveries[key],
           let existing = try deployment(id: first) {
            return (existing, false)
        }
        var id = highestID + 1
        // Never overwrite a record, even one written behind pushdeploy's back.
        while access(recordPath(id), F_OK) == 0 { id += 1 }
        let deployment = Deployment(id: id, app: app, kind: kind, trigger: trigger, strategy: strategy, createdAt: date)
        try AtomicFile.write(JSONEncoder.pushDeploy.encode(deployment), to: recordPath(id))
        highestID = id
        index.append(DeploymentSummary(deployment))
        if let key = DeploymentSummary.deliveryKey(trigger) { deliveries[key] = id }
        remember(deployment)
        prune()
        writeIndex()
        return (deployment, true)
    }

    func update(id: Int, _ change: (inout Deployment) throws -> Void) throws -> Deployment {
        guard var deployment = try deployment(id: id) else { throw HistoryError.notFound(app: app, id: id) }
        try change(&deployment)
        try save(deployment)
        // The index is not written again here (it is 250 KB at a thousand records, and a deployment changes a few
        // times): start-up reads every record changed after the index was written, and the next create writes it.
        return deployment
    }

    // MARK: Reading

    func deployment(id: Int) throws -> Deployment? {
        guard isOpen else { throw HistoryError.notOpened(app: app) }
        if let cached = cache[id] { return cached }
        guard position(of: id) != nil else { return nil }
        return try read(id)
    }

    func list(limit: Int) throws -> [Deployment] {
        guard isOpen else { throw HistoryError.notOpened(app: app) }
        var result: [Deployment] = []
        for entry in index.reversed() where result.count < limit {
            // One unreadable record must not hide the rest of the history.
            if let deployment = try? deployment(id: entry.id) { result.append(deployment) }
        }
        return result
    }

    func summaries() throws -> [DeploymentSummary] {
        guard isOpen else { throw HistoryError.notOpened(app: app) }
        return index
    }

    func log(id: Int) throws -> FileDeploymentLog {
        try FileDeploymentLog(path: logPath(id), maxBytes: settings.logMaxBytes)
    }

    // MARK: Files

    /// Writes a record and brings the index entry and the cache in line with it.
    private func save(_ deployment: Deployment) throws {
        try AtomicFile.write(JSONEncoder.pushDeploy.encode(deployment), to: recordPath(deployment.id))
        if let position = position(of: deployment.id) { index[position] = DeploymentSummary(deployment) }
        remember(deployment)
    }

    private func read(_ id: Int) throws -> Deployment {
        let path = recordPath(id)
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

    private struct StoredIndex: Codable {
        /// `highestId`, not `highestID`: the snake-case coders write `highest_id` and read it back as `highestId`
        /// (with `highestID` no index was ever read, and every start-up read every record).
        var highestId: Int
        var entries: [DeploymentSummary]
    }

    private func readIndex() -> StoredIndex? {
        guard let data = FileManager.default.contents(atPath: indexPath) else { return nil }
        return try? JSONDecoder.pushDeploy.decode(StoredIndex.self, from: data)
    }

    /// A failed index write is not an error: the records are the truth, and start-up reads what the index missed.
    private func writeIndex() {
        let stored = StoredIndex(highestId: highestID, entries: index)
        _ = try? AtomicFile.write(JSONEncoder.pushDeploy.encode(stored), to: indexPath)
    }

    private func modificationTime(_ path: String) -> Double? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
    }

    // MARK: Retention

    /// Deletes the oldest finished records and their logs beyond `keep_history`; never the live release's
    /// deployment, the rollback target's, or an unfinished one.
    private func prune() {
        guard index.count > settings.keepHistory else { return }
        let live = index.liveVersion
        let target = index.rollbackVersion(live: live)
        var protected = Set<Int>()
        for version in [live, target].compactMap({ $0 }) {
            if let entry = index.last(where: { $0.status == .succeeded && $0.version == version }) { protected.insert(entry.id) }
        }
        var excess = index.count - settings.keepHistory
        var removed = Set<Int>()
        for entry in index where excess > 0 && entry.status.isFinished && !protected.contains(entry.id) {
            unlink(recordPath(entry.id))
            unlink(logPath(entry.id))
            removed.insert(entry.id)
            cache[entry.id] = nil
            if let key = entry.delivery, deliveries[key] == entry.id { deliveries[key] = nil }
            excess -= 1
        }
        if !removed.isEmpty {
            index.removeAll { removed.contains($0.id) }
            try? AtomicFile.syncDirectory(folder)
        }
    }

    // MARK: Memory

    private func position(of id: Int) -> Int? {
        var low = 0, high = index.count
        while low < high {
            let middle = (low + high) / 2
            if index[middle].id < id { low = middle + 1 } else { high = middle }
        }
        return low < index.count && index[low].id == id ? low : nil
    }

    private func remember(_ deployment: Deployment) {
        cache[deployment.id] = deployment
        if cache.count > 64 {
            cache = cache.filter { !$0.value.status.isFinished || $0.key == deployment.id }
        }
    }
}
