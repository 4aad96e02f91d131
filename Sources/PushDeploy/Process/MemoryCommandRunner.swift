import Foundation

/// A command runner for unit tests: records every command and answers from a script instead of running anything.
public actor MemoryCommandRunner: CommandRunner {
    /// What a scripted command does: print lines, then end with a status or throw.
    public struct Response: Sendable {
        public var status: CommandStatus
        public var output: [String]
        public var error: CommandError?

        public init(status: CommandStatus = .exited(0), output: [String] = [], error: CommandError? = nil) {
            self.status = status
            self.output = output
            self.error = error
        }
    }

    private let respond: @Sendable (Command) -> Response
    /// Every command run so far, in order.
    public private(set) var commands: [Command] = []

    /// A runner where every command succeeds silently unless `respond` says otherwise.
    public init(respond: @escaping @Sendable (Command) -> Response = { _ in Response() }) {
        self.respond = respond
    }

    public func run(_ command: Command, log: (any DeploymentLog)?, timeout: Duration?) async throws -> CommandResult {
        guard !command.arguments.isEmpty else { throw CommandError.emptyCommand }
        try Task.checkCancellation()
        commands.append(command)
        let response = respond(command)
        if !response.output.isEmpty {
            log?.write(response.output.map { $0 + "\n" }.joined())
        }
        if let error = response.error { throw error }
        return CommandResult(status: response.status, outputTail: response.output, seconds: 0)
    }
}
