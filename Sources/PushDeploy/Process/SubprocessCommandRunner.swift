#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Subprocess
import Synchronization
import SystemPackage

/// Runs commands with swift-subprocess, each in its own session so that a timeout or a cancellation ends the whole tree.
///
/// Why swift-subprocess rather than our own `posix_spawn`: it already starts the child with `POSIX_SPAWN_SETSID`
/// (`createSession`), reaps it through a pidfd, unblocks the output pipe when the child exits even if a grandchild
/// (a Gradle daemon, a forked test JVM) still holds it open, and runs a teardown sequence on task cancellation.
/// What it leaves to us: the teardown only waits for the main process, so when that one exits on SIGTERM its
/// children may linger; we follow every teardown with a SIGKILL to the whole process group.
/// Tools that call `setsid` themselves (the Gradle daemon does) are outside that group on purpose and live on.
public struct SubprocessCommandRunner: CommandRunner {
    /// How long the process group gets between SIGTERM and SIGKILL.
    public var gracePeriod: Duration
    /// How many of the last output lines a result or an error keeps.
    public var tailLines: Int

    public init(gracePeriod: Duration = .seconds(5), tailLines: Int = 40) {
        self.gracePeriod = gracePeriod
        self.tailLines = tailLines
    }

    public func run(_ command: Command, log: (any DeploymentLog)?, timeout: Duration?) async throws -> CommandResult {
        guard !command.arguments.isEmpty else { throw CommandError.emptyCommand }
        let tail = OutputTail(limit: tailLines, log: log)
        let started = ContinuousClock.now
        guard let timeout else {
            let status = try await execute(command, tail: tail)
            return CommandResult(status: status, outputTail: tail.lines, seconds: (ContinuousClock.now - started).seconds)
        }
        let outcome = try await withThrowingTaskGroup(of: Outcome.self) { group in
            group.addTask { .finished(try await execute(command, tail: tail)) }
            group.addTask {
                try await Task.sleep(for: timeout)
                return .timedOut
            }
            // The first to finish decides; cancelling the other tears the process down before the group returns.
            let first = try await group.next()!
            group.cancelAll()
            while await group.nextResult() != nil {}
            return first
        }
        try Task.checkCancellation()
        switch outcome {
        case let .finished(status):
            return CommandResult(status: status, outputTail: tail.lines, seconds: (ContinuousClock.now - started).seconds)
        case .timedOut:
            throw CommandError.timedOut(command: command.description, after: timeout, outputTail: tail.lines)
        }
    }

    private enum Outcome: Sendable {
        case finished(CommandStatus)
        case timedOut
    }

    /// Runs the command to its end; on cancellation, ends its process group and throws `CancellationError`.
    private func execute(_ command: Command, tail: OutputTail) async throws -> CommandStatus {
        let executable = try Self.executable(for: command)
        var options = Subprocess.PlatformOptions()
        options.createSession = true
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: gracePeriod)]
        var environment: [Subprocess.Environment.Key: String] = [:]
        for (key, value) in ChildEnvironment.make(command.environment) {
            guard let name = Subprocess.Environment.Key(rawValue: key) else { continue }
            environment[name] = value
        }
        let group = ProcessGroup()
        let result: ExecutionResult<Void, SequenceOutput, CombinedErrorOutput>
        do {
            result = try await Subprocess.run(
                executable,
                arguments: Subprocess.Arguments(Array(command.arguments.dropFirst())),
                environment: .custom(environment),
                workingDirectory: command.workingDirectory.map { FilePath($0) },
                platformOptions: options,
                input: .none,
                output: .sequence,
                error: .combinedWithOutput
            ) { execution in
                group.record(execution.processIdentifier.value)
                for try await chunk in execution.standardOutput {
                    chunk.withUnsafeBytes { tail.append($0) }
                }
            }
        } catch let error as SubprocessError {
            group.killRemaining()
            try Task.checkCancellation()
            throw CommandError.launchFailed(command: command.description, reason: "\(error)")
        } catch {
            group.killRemaining()
            throw error
        }
        tail.finish()
        if Task.isCancelled {
            group.killRemaining()
            throw CancellationError()
        }
        switch result.terminationStatus {
        case let .exited(code): return .exited(code)
        case let .signaled(signal): return .signalled(signal)
        }
    }

    /// A name is looked up on `PATH`; a path with a slash is taken relative to the working directory, as a shell would.
    private static func executable(for command: Command) throws -> Subprocess.Executable {
        let program = command.program
        guard program.contains("/") else { return .name(program) }
        if program.hasPrefix("/") { return .path(FilePath(program)) }
        let base = command.workingDirectory ?? FileManager.default.currentDirectoryPath
        let path = (base as NSString).appendingPathComponent(program)
        guard access(path, X_OK) == 0 else {
            throw CommandError.launchFailed(command: command.description, reason: "\(path) is not an executable file")
        }
        return .path(FilePath(path))
    }
}

/// The session (and so process group) id of a running command, to kill what is left of it after a teardown.
private final class ProcessGroup: Sendable {
    private let id = Atomic<Int32>(0)

    func record(_ pid: Int32) { id.store(pid, ordering: .relaxed) }

    /// SIGKILL to every process still in the group.
    ///
    /// The leader was reaped a moment ago, but the kernel does not hand its id to a new process while
    /// the group still has members, so the signal cannot reach a stranger in practice.
    func killRemaining() {
        let pid = id.load(ordering: .relaxed)
        if pid > 0 { kill(-pid, SIGKILL) }
    }
}
