/// One mistake in the config: the key path, the line, and what is wrong.
public struct ConfigProblem: Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var line: Int?
    public var message: String

    public init(path: String, line: Int? = nil, message: String) {
        self.path = path
        self.line = line
        self.message = message
    }

    public var description: String {
        let place = path.isEmpty ? "config" : path
        if let line { return "line \(line): \(place): \(message)" }
        return "\(place): \(message)"
    }
}

/// A config that cannot be used, with every problem found.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var file: String?
    public var problems: [ConfigProblem]

    public init(file: String? = nil, problems: [ConfigProblem]) {
        self.file = file
        self.problems = problems
    }

    public var description: String {
        let head = "\(file ?? "config") has \(problems.count) problem\(problems.count == 1 ? "" : "s")"
        return ([head] + problems.map { "  - \($0)" }).joined(separator: "\n")
    }
}
