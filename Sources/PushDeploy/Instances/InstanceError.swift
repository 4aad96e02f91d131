import Foundation

/// Why an instance could not be started or stopped.
public enum InstanceError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The release's jar or folder is not on disk (pruned, or never stored).
    case releaseMissing(version: String, path: String)
    /// Something already listens on the port, so the new instance could not bind it.
    case portInUse(port: Int)
    /// The program could not be started at all.
    case launchFailed(command: String, port: Int, reason: String)
    /// The process ended right after it started; `logTail` holds the last lines of its log file.
    case exitedAtOnce(port: Int, status: CommandStatus?, logPath: String, logTail: [String])
    /// The start was cancelled; the process was killed.
    case cancelled(port: Int, logPath: String, logTail: [String])
    /// The process did not go away even after SIGKILL (or may not be signalled).
    case stopFailed(port: Int, pid: Int32, reason: String)
    /// A file the supervisor needs (log folder, unit environment file) could not be written.
    case file(operation: String, path: String, reason: String)
    /// `run.command` cannot be expressed through the `pushdeploy-app@.service` unit.
    case unsupportedSystemdCommand(command: String, reason: String)
    /// A `systemctl` call failed.
    case systemctlFailed(command: String, status: CommandStatus, outputTail: [String])

    public var description: String {
        switch self {
        case let .releaseMissing(version, path):
            "release \(version) is not on disk (\(path) is missing); was it pruned?"
        case let .portInUse(port):
            "port \(port) is already in use by another process (see `ss -ltnp 'sport = :\(port)'`)"
        case let .launchFailed(command, port, reason):
            "could not start \(command) for port \(port): \(reason)"
        case let .exitedAtOnce(port, status, logPath, tail):
            "the instance on port \(port) exited at once" + (status.map { " with \($0)" } ?? "")
                + " (log: \(logPath))" + CommandError.tailText(tail)
        case let .cancelled(port, logPath, tail):
            "the start on port \(port) was cancelled and its process killed (log: \(logPath))" + CommandError.tailText(tail)
        case let .stopFailed(port, pid, reason):
            "could not stop the instance on port \(port) (pid \(pid)): \(reason)"
        case let .file(operation, path, reason):
            "\(operation) \(path): \(reason)"
        case let .unsupportedSystemdCommand(command, reason):
            "run.command \(command) cannot run under pushdeploy-app@.service: \(reason)"
        case let .systemctlFailed(command, status, tail):
            "\(command) failed with \(status)" + CommandError.tailText(tail)
        }
    }
}
