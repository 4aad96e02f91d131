import Foundation

/// An app supervisor for unit tests: instances are records, and a test can crash one or make a start fail.
public actor MemoryAppSupervisor: AppSupervisor {
    /// What happened, in order: `start <version> on <port>`, `stop <version> on <port>`.
    public private(set) var events: [String] = []
    private var running: [Int: Instance] = [:]
    private var startFailures: [Int: InstanceError] = [:]
    private var nextPID: Int32 = 10_000

    public init() {}

    /// The instances running now, by port.
    public var instances: [Instance] { running.values.sorted { $0.port < $1.port } }

    /// The ports with a running instance.
    public var runningPorts: [Int] { running.keys.sorted() }

    /// The instance running on `port`, if any.
    public func instance(on port: Int) -> Instance? { running[port] }

    /// Makes every later start on `port` throw `error` (nil: starts succeed again).
    public func failStarts(on port: Int, with error: InstanceError? = nil) {
        startFailures[port] = error ?? .exitedAtOnce(port: port, status: .exited(1), logPath: "memory", logTail: ["failed on purpose"])
    }

    /// Lets starts on `port` succeed again.
    public func allowStarts(on port: Int) { startFailures[port] = nil }

    /// The process on `port` dies, as a crash would.
    public func crash(port: Int) {
        if let instance = running.removeValue(forKey: port) { events.append("crash \(instance.version) on \(port)") }
    }

    /// Records an instance as running, as if it had survived a restart of pushdeploy.
    public func seed(_ instance: Instance) {
        running[instance.port] = instance
    }

    public func start(_ release: Release, app: AppConfig, port: Int, slot: String, log: any DeploymentLog) async throws -> Instance {
        try Task.checkCancellation()
        if let error = startFailures[port] {
            events.append("failed start \(release.version) on \(port)")
            throw error
        }
        guard running[port] == nil else { throw InstanceError.portInUse(port: port) }
        nextPID += 1
        let instance = Instance(port: port, slot: slot, version: release.version, commit: release.commit, pid: nextPID,
                                processStartTicks: UInt64(nextPID), startedAt: Date())
        running[port] = instance
        events.append("start \(release.version) on \(port)")
        log.line("started \(release.version) on port \(port) as pid \(nextPID)")
        return instance
    }

    public func stop(_ instance: Instance, app: AppConfig, log: any DeploymentLog) async throws {
        guard running[instance.port] == instance else { return }
        running[instance.port] = nil
        events.append("stop \(instance.version) on \(instance.port)")
        log.line("stopped \(instance.version) on port \(instance.port)")
    }

    public func isRunning(_ instance: Instance) async -> Bool {
        running[instance.port] == instance
    }

    /// Stops every running instance that is not in `known`.
    public func stopStrays(app: AppConfig, known: [Instance], log: any DeploymentLog) async -> [String] {
        let strays = running.values.filter { !known.contains($0) }.sorted { $0.port < $1.port }
        for stray in strays { running[stray.port] = nil }
        return strays.map { "stopped unrecorded \($0.version) on port \($0.port)" }
    }

    /// The instances still running (for re-adoption at start-up).
    public func adopt(_ instances: [Instance]) async -> [Instance] {
        instances.filter { running[$0.port] == $0 }
    }
}
