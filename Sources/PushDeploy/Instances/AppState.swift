import Foundation

/// What runs for an app and what nginx serves: `apps/<app>/state.json`.
public struct AppState: Codable, Sendable, Equatable {
    /// The part an instance plays.
    public enum Role: String, Codable, Sendable {
        /// nginx sends traffic to it.
        case live
        /// The previous release, kept running for a rollback that is only an nginx flip.
        case warm
        /// Started by a deployment that has not switched yet; found at start-up, it is stopped.
        case starting
    }

    /// An instance and its role.
    public struct Entry: Codable, Sendable, Equatable {
        public var instance: Instance
        public var role: Role
        /// How many times supervision restarted the release on this port since a deployment put it there.
        public var restarts: Int?

        public init(_ instance: Instance, role: Role, restarts: Int? = nil) {
            self.instance = instance
            self.role = role
            self.restarts = restarts
        }
    }

    public var entries: [Entry]
    public var updatedAt: Date?

    public init(entries: [Entry] = [], updatedAt: Date? = nil) {
        self.entries = entries
        self.updatedAt = updatedAt
    }

    /// The instances nginx serves.
    public var live: [Instance] { entries.filter { $0.role == .live }.map(\.instance) }

    /// The instances kept warm for a fast rollback.
    public var warm: [Instance] { entries.filter { $0.role == .warm }.map(\.instance) }

    /// The version nginx serves (the newest when a rolling deployment is half-way).
    public var liveVersion: String? { live.max { $0.startedAt < $1.startedAt }?.version }

    /// The entry on `port`.
    public func entry(port: Int) -> Entry? { entries.first { $0.instance.port == port } }

    /// Puts `instance` in `role`, replacing whatever was recorded on its port.
    /// `restarts` nil keeps the count of the same instance already there.
    public mutating func set(_ instance: Instance, role: Role, restarts: Int? = nil) {
        let kept = entry(port: instance.port).flatMap { $0.instance == instance ? $0.restarts : nil }
        entries.removeAll { $0.instance.port == instance.port }
        entries.append(Entry(instance, role: role, restarts: restarts ?? kept))
        entries.sort { $0.instance.port < $1.instance.port }
    }

    /// Forgets what was recorded on `port`.
    public mutating func remove(port: Int) {
        entries.removeAll { $0.instance.port == port }
    }
}

/// Keeps `apps/<app>/state.json`: loaded, changed in a closure, saved atomically only if the closure succeeded.
///
/// It runs on a dispatch queue of its own: a save blocks on fsync, which must not hold a cooperative thread.
public actor AppStateStore {
    public nonisolated let stateDirectory: String
    private var cache: [String: AppState] = [:]
    private let executor = DispatchQueueExecutor(label: "pushdeploy.app-state")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    public init(stateDirectory: String) {
        self.stateDirectory = stateDirectory
    }

    /// The path of an app's state file.
    public nonisolated func path(app: String) -> String { "\(stateDirectory)/apps/\(app)/state.json" }

    /// The app's state; an absent file is an empty state.
    public func state(app: String) throws -> AppState {
        if let cached = cache[app] { return cached }
        let file = path(app: app)
        guard let data = FileManager.default.contents(atPath: file) else { return AppState() }
        do {
            let state = try JSONDecoder.pushDeploy.decode(AppState.self, from: data)
            cache[app] = state
            return state
        } catch {
            throw FileError(operation: "read", path: file, errno: EIO, detail: "not a valid state file: \(error)")
        }
    }

    /// Changes the state in `change` and saves it; nothing is saved when `change` throws.
    @discardableResult
    public func update(app: String, _ change: (inout AppState) throws -> Void) throws -> AppState {
        var state = try state(app: app)
        try change(&state)
        state.updatedAt = Date()
        let file = path(app: app)
        try AtomicFile.makeDirectory((file as NSString).deletingLastPathComponent)
        try AtomicFile.write(JSONEncoder.pushDeploy.encode(state), to: file)
        cache[app] = state
        return state
    }
}
