#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Runs each instance as a detached child process in its own session, so it outlives a restart of pushdeploy.
///
/// Output goes to `<state_dir>/apps/<app>/logs/<port>.log`. An instance is known by pid and start time
/// (`/proc/<pid>/stat`), never by pid alone. There is no mutable state here: `/proc` is the truth.
public struct ProcessAppSupervisor: AppSupervisor {
    public let stateDirectory: String
    public let releases: any ReleaseStore
    /// How long `start` watches the new process for an immediate exit (a missing jar, a bad option).
    public var exitWatch: Duration = .milliseconds(200)
    /// How long `stop` waits for the process group to go after SIGKILL before it reports a failure.
    public var killWait: Duration = .seconds(5)
    /// How many lines of the instance's log an error quotes.
    public var tailLines = 20

    public init(stateDirectory: String, releases: any ReleaseStore) {
        self.stateDirectory = stateDirectory
        self.releases = releases
    }

    /// The log file of the instance of `app` on `port`.
    public func logPath(app: String, port: Int) -> String {
        "\(stateDirectory)/apps/\(app)/logs/\(port).log"
    }

    public func start(_ release: Release, app: AppConfig, port: Int, slot: String, log: any DeploymentLog) async throws -> Instance {
        try Task.checkCancellation()
        var launch = InstanceLaunch(release: release, run: app.run, port: port, slot: slot,
                                    jarPath: releases.jarPath(app: release.app, version: release.version))
        // Lets a restarted pushdeploy find this process even if it dies before the instance is recorded.
        launch.environment[Self.markerVariable] = marker(app: app.name, port: port)
        guard FileManager.default.fileExists(atPath: launch.jarPath) else {
            throw InstanceError.releaseMissing(version: release.version, path: launch.jarPath)
        }
        guard PortProbe.isFree(port) else { throw InstanceError.portInUse(port: port) }
        let logPath = logPath(app: app.name, port: port)
        let (fd, offset) = try openLog(logPath)
        defer { close(fd) }
        let header = "[\(Self.stamp())] pushdeploy: starting \(release.version) (\(slot)) on port \(port): \(launch.commandDescription)\n"
        _ = header.withCString { write(fd, $0, strlen($0)) }
        let process = try DetachedProcess.spawn(launch, port: port, logFD: fd)
        let startedAt = Date()
        log.line("started \(release.version) on port \(port) as pid \(process.pid) (log: \(logPath))")

        // A process that dies at once (a missing jar, a bad option) is reported here with its output, not later as a timeout.
        let watchUntil = ContinuousClock.now + exitWatch
        while ContinuousClock.now < watchUntil {
            do {
                try await Task.sleep(for: .milliseconds(20))
            } catch {
                process.signalGroup(SIGKILL)
                await waitUntilGone(process, for: killWait)
                log.line("start on port \(port) cancelled: killed pid \(process.pid)")
                throw InstanceError.cancelled(port: port, logPath: logPath, logTail: LogTail.read(logPath, from: offset, lines: tailLines))
            }
            if case let .gone(status) = process.status() {
                process.signalGroup(SIGKILL)
                throw InstanceError.exitedAtOnce(port: port, status: status, logPath: logPath,
                                                 logTail: LogTail.read(logPath, from: offset, lines: tailLines))
            }
        }
        return Instance(port: port, slot: slot, version: release.version, commit: release.commit, pid: process.pid,
                        processStartTicks: process.startTicks, startedAt: startedAt, logPath: logPath)
    }

    public func stop(_ instance: Instance, app: AppConfig, log: any DeploymentLog) async throws {
        guard let process = Self.process(of: instance) else {
            log.line("\(instance.version) on port \(instance.port) has no recorded process: nothing to stop")
            return
        }
        let name = "\(instance.version) on port \(instance.port) (pid \(process.pid))"
        let appLog = instance.logPath.flatMap { try? FileDeploymentLog(path: $0, maxBytes: .max) }
        func note(_ text: String) {
            log.line(text)
            appLog?.line("pushdeploy: " + text)
        }
        guard process.status() == .running else {
            process.signalGroup(SIGKILL)  // whatever the leader left behind in its group
            log.line("\(name) is not running: nothing to stop")
            return
        }
        let timeout = app.run.stopTimeout
        note("stopping \(name): SIGTERM, up to \(DurationParser.format(timeout)) for in-flight requests")
        let started = ContinuousClock.now
        process.signalGroup(SIGTERM)
        do {
            if let status = try await pollUntilGone(process, for: timeout) {
                process.signalGroup(SIGKILL)
                note("stopped \(name) after \(Self.seconds(since: started))" + (status.map { " (\($0))" } ?? ""))
                return
            }
        } catch {
            process.signalGroup(SIGKILL)
            note("stop of \(name) cancelled: SIGKILL")
            throw error
        }
        note("\(name) still running after \(DurationParser.format(timeout)): SIGKILL")
        process.signalGroup(SIGKILL)
        guard await waitUntilGone(process, for: killWait) else {
            throw InstanceError.stopFailed(port: instance.port, pid: process.pid,
                                           reason: "still running \(DurationParser.format(killWait)) after SIGKILL")
        }
        note("killed \(name)")
    }

    public func isRunning(_ instance: Instance) async -> Bool {
        Self.process(of: instance)?.status() == .running
    }

    /// The instances that still run and are the very processes recorded (for re-adoption at start-up).
    public func adopt(_ instances: [Instance]) async -> [Instance] {
        instances.filter { Self.process(of: $0)?.status() == .running }
    }

    /// The recorded process; nil for a record without a pid and start time, which cannot be told from a stranger.
    private static func process(of instance: Instance) -> DetachedProcess? {
        guard let pid = instance.pid, let ticks = instance.processStartTicks else { return nil }
        return DetachedProcess(pid: pid, startTicks: ticks)
    }

    /// Polls every 50 ms; returns `.some(status)` once the process is gone, nil when `limit` passed first.
    private func pollUntilGone(_ process: DetachedProcess, for limit: Duration) async throws -> CommandStatus?? {
        let deadline = ContinuousClock.now + limit
        while true {
            if case let .gone(status) = process.status() { return .some(status) }
            guard ContinuousClock.now < deadline else { return nil }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Waits, even in a cancelled task, for a killed process to go; false when it is still there after `limit`.
    @discardableResult
    private func waitUntilGone(_ process: DetachedProcess, for limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if case .gone = process.status() { return true }
            // Task.sleep would return at once in a cancelled task: sleep in a detached one, which no cancellation
            // reaches, and keep the thread free (under `serve` the async code runs on the event loops).
            await Task.detached { try? await Task.sleep(for: .milliseconds(10)) }.value
        }
        if case .gone = process.status() { return true }
        return false
    }

    /// Opens (creating) the log for appending; returns the descriptor and the size before this start.
    private func openLog(_ path: String) throws(InstanceError) -> (Int32, Int) {
        do {
            try AtomicFile.makeDirectory((path as NSString).deletingLastPathComponent)
        } catch {
            throw .file(operation: "mkdir", path: (path as NSString).deletingLastPathComponent, reason: "\(error)")
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw .file(operation: "open", path: path, reason: String(cString: strerror(errno))) }
        return (fd, Int(lseek(fd, 0, SEEK_END)))
    }

    private static func stamp() -> String {
        Date().formatted(.iso8601)
    }

    private static func seconds(since start: ContinuousClock.Instant) -> String {
        String(format: "%.1f s", (ContinuousClock.now - start).seconds)
    }
}
