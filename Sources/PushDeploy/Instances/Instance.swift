import Foundation

/// One running copy of a release on a port, as `apps/<app>/state.json` records it.
public struct Instance: Codable, Sendable, Equatable {
    public var port: Int
    /// `blue`/`green` for blue-green, `instance-<port>` for rolling.
    public var slot: String
    public var version: String
    public var commit: String
    /// The process id (nil under systemd, where the unit owns the process).
    public var pid: Int32?
    /// The process's start time in clock ticks since boot (field 22 of `/proc/<pid>/stat`), so a reused pid is never mistaken for ours.
    public var processStartTicks: UInt64?
    public var startedAt: Date
    /// The instance's own log file.
    public var logPath: String?

    public init(port: Int, slot: String, version: String, commit: String, pid: Int32? = nil, processStartTicks: UInt64? = nil,
                startedAt: Date = Date(), logPath: String? = nil) {
        self.port = port
        self.slot = slot
        self.version = version
        self.commit = commit
        self.pid = pid
        self.processStartTicks = processStartTicks
        self.startedAt = startedAt
        self.logPath = logPath
    }
}

/// Starts and stops instances of releases; the real ones outlive a restart of pushdeploy.
public protocol AppSupervisor: Sendable {
    /// Starts `release` on `port` with the app's run command and environment, detached, and returns at once.
    func start(_ release: Release, app: AppConfig, port: Int, slot: String, log: any DeploymentLog) async throws -> Instance
    /// SIGTERM, up to `app.run.stopTimeout` for in-flight requests, then SIGKILL. Stopping a dead instance is not an error.
    func stop(_ instance: Instance, app: AppConfig, log: any DeploymentLog) async throws
    /// True while the instance's process (the very one started, not a reused pid) is alive.
    func isRunning(_ instance: Instance) async -> Bool
    /// Stops the app's instances that run but are not in `known` (pushdeploy died between starting one and
    /// writing it down); returns one line per stop.
    func stopStrays(app: AppConfig, known: [Instance], log: any DeploymentLog) async -> [String]
}

/// Decides whether an instance answers as healthy.
public protocol HealthChecker: Sendable {
    /// Polls until healthy; throws at once when `isAlive` turns false, or when `health.startupTimeout` passes.
    func waitUntilHealthy(port: Int, health: HealthConfig, log: any DeploymentLog,
                          isAlive: @escaping @Sendable () async -> Bool) async throws
    /// One probe: true when the status and body are as expected.
    func isHealthy(port: Int, health: HealthConfig) async -> Bool
}

/// Points nginx at a set of ports and proves it took effect.
public protocol TrafficSwitch: Sendable {
    /// Writes the include file for `ports` (one port: blue-green `set $service_url`; several: an `upstream`),
    /// tests it, reloads, and confirms through nginx that requests reach `expectVersion`; on any failure puts the old file back.
    /// For a canary step, `ports` is the stable release's port and the new one's, and `canaryPercent` the new one's share.
    func route(to ports: [Int], canaryPercent: Int?, app: AppConfig, expectVersion: String?, log: any DeploymentLog) async throws
    /// The ports the include file points at now, or nil when there is no include file yet.
    func currentPorts(app: AppConfig) -> [Int]?
}

extension TrafficSwitch {
    /// Sends every request to `ports`.
    public func route(to ports: [Int], app: AppConfig, expectVersion: String?, log: any DeploymentLog) async throws {
        try await route(to: ports, canaryPercent: nil, app: app, expectVersion: expectVersion, log: log)
    }
}
