import Foundation

/// Runs external programs: builds, `nginx -t`, lifecycle hooks.
public protocol CommandRunner: Sendable {
    /// Runs `command` to its end, streaming its output to `log`; a timeout or a cancelled task ends its whole process tree.
    ///
    /// A non-zero exit is a result, not an error (see ``CommandResult/checked(_:)``). Throws
    /// ``CommandError/timedOut(command:after:outputTail:)`` when `timeout` passes and `CancellationError`
    /// when the calling task is cancelled, in both cases after the processes are gone.
    func run(_ command: Command, log: (any DeploymentLog)?, timeout: Duration?) async throws -> CommandResult
}

extension CommandRunner {
    /// Runs `command` without a log or a timeout.
    public func run(_ command: Command) async throws -> CommandResult {
        try await run(command, log: nil, timeout: nil)
    }
}

/// Why a command did not run to a successful end.
public enum CommandError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The argument list was empty.
    case emptyCommand
    /// The program could not be started (not found, not executable, bad working directory).
    case launchFailed(command: String, reason: String)
    /// The program exited unsuccessfully (raised only by ``CommandResult/checked(_:)``).
    case failed(command: String, status: CommandStatus, outputTail: [String])
    /// The program ran past its timeout; its process tree was ended.
    case timedOut(command: String, after: Duration, outputTail: [String])

    public var description: String {
        switch self {
        case .emptyCommand:
            "empty command"
        case let .launchFailed(command, reason):
            "could not start \(command): \(reason)"
        case let .failed(command, status, tail):
            "\(command) failed with \(status)" + Self.tailText(tail)
        case let .timedOut(command, after, tail):
            "\(command) timed out after \(DurationParser.format(after)) and was stopped" + Self.tailText(tail)
        }
    }

    /// The output tail as an indented block for an error message.
    static func tailText(_ tail: [String]) -> String {
        tail.isEmpty ? "" : "; last output:\n" + tail.map { "  " + $0 }.joined(separator: "\n")
    }
}
