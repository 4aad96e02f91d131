import Foundation

/// A program and its arguments, run without a shell, with a working directory and extra environment.
public struct Command: Sendable, Equatable, CustomStringConvertible {
    /// The program first, then its arguments; never joined into a shell string.
    public var arguments: [String]
    /// Where the program runs; nil means pushdeploy's own working directory.
    public var workingDirectory: String?
    /// Variables set on top of ``ChildEnvironment`` (never pushdeploy's own environment).
    public var environment: [String: String]

    public init(_ arguments: [String], workingDirectory: String? = nil, environment: [String: String] = [:]) {
        self.arguments = arguments
        self.workingDirectory = workingDirectory
        self.environment = environment
    }

    /// The program as written in the command: a name looked up on `PATH`, or a path.
    public var program: String { arguments.first ?? "" }

    /// The command quoted the way a shell would need it, for logs and errors only.
    /// The command line for a log: quoted where needed, the value of any argument whose name says password,
    /// secret or token masked (`--db.password=***`, `--token ***`).
    public var description: String {
        var words: [String] = []
        var maskNext = false
        for argument in arguments {
            if maskNext {
                words.append("***")
                maskNext = false
                continue
            }
            if let equals = argument.firstIndex(of: "="), Self.isSecretName(argument[..<equals]) {
                words.append(Self.quoted(String(argument[...equals])) + "***")
            } else {
                words.append(Self.quoted(argument))
                maskNext = argument.hasPrefix("-") && Self.isSecretName(Substring(argument))
            }
        }
        return words.joined(separator: " ")
    }

    private static func isSecretName(_ name: Substring) -> Bool {
        let lowered = name.lowercased()
        return ["password", "passwd", "secret", "token"].contains { lowered.contains($0) }
    }

    private static func quoted(_ argument: String) -> String {
        let plain = argument.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0) }
        if plain, !argument.isEmpty { return argument }
        return "'" + argument.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

/// How a finished command ended.
public enum CommandStatus: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The program exited with this code.
    case exited(Int32)
    /// The program was ended by this signal.
    case signalled(Int32)

    /// True for exit code 0.
    public var isSuccess: Bool { self == .exited(0) }

    public var description: String {
        switch self {
        case let .exited(code): "exit code \(code)"
        case let .signalled(signal): "killed by signal \(signal)\(Self.signalName(signal).map { " (\($0))" } ?? "")"
        }
    }

    private static func signalName(_ signal: Int32) -> String? {
        switch signal {
        case SIGTERM: "SIGTERM"
        case SIGKILL: "SIGKILL"
        case SIGINT: "SIGINT"
        case SIGSEGV: "SIGSEGV"
        case SIGABRT: "SIGABRT"
        default: nil
        }
    }
}

/// What a command left behind: how it ended and the last lines it printed.
public struct CommandResult: Sendable, Equatable {
    public var status: CommandStatus
    /// The last lines of stdout and stderr together, oldest first.
    public var outputTail: [String]
    /// Wall-clock seconds from launch to exit.
    public var seconds: Double

    public init(status: CommandStatus, outputTail: [String] = [], seconds: Double = 0) {
        self.status = status
        self.outputTail = outputTail
        self.seconds = seconds
    }

    /// Returns the result when the command succeeded, or throws ``CommandError/failed(command:status:outputTail:)``.
    @discardableResult
    public func checked(_ command: Command) throws(CommandError) -> CommandResult {
        guard status.isSuccess else {
            throw .failed(command: command.description, status: status, outputTail: outputTail)
        }
        return self
    }
}
