import Foundation

/// A health checker for unit tests: a test says how each port answers, and can change it while a deployment waits.
public actor MemoryHealthChecker: HealthChecker {
    /// How a port answers.
    public enum Answer: Sendable, Equatable {
        case healthy
        /// Answers, but not as expected: `waitUntilHealthy` times out.
        case unhealthy
        /// The process is gone: `waitUntilHealthy` fails at once.
        case dead
    }

    private var answers: [Int: Answer] = [:]
    private let fallback: Answer
    private let patience: Duration
    /// Every port `waitUntilHealthy` was asked about, in order.
    public private(set) var waits: [Int] = []

    /// Ports answer `fallback` until told otherwise; an unhealthy port is given up on after `patience`
    /// (real time, instead of `startup_timeout`), so a test can turn it healthy meanwhile without waiting minutes.
    public init(fallback: Answer = .healthy, patience: Duration = .milliseconds(200)) {
        self.fallback = fallback
        self.patience = patience
    }

    /// Sets how `port` answers from now on.
    public func set(_ answer: Answer, port: Int) { answers[port] = answer }

    /// How `port` answers now.
    public func answer(port: Int) -> Answer { answers[port] ?? fallback }

    public func waitUntilHealthy(port: Int, health: HealthConfig, log: any DeploymentLog,
                                 isAlive: @escaping @Sendable () async -> Bool) async throws {
        waits.append(port)
        let deadline = ContinuousClock.now + min(patience, health.startupTimeout)
        while true {
            try Task.checkCancellation()
            // A process that is gone never answers, whatever the port was set to.
            guard await isAlive() else {
                throw HealthError.processExited(port: port, lastStatus: nil, lastError: "connect: Connection refused")
            }
            switch answer(port: port) {
            case .healthy:
                log.line("port \(port) is healthy")
                return
            case .dead:
                throw HealthError.processExited(port: port, lastStatus: nil, lastError: "connect: Connection refused")
            case .unhealthy:
                guard ContinuousClock.now < deadline else {
                    throw HealthError.timedOut(after: health.startupTimeout, lastStatus: 503, lastError: "body does not contain \"UP\"")
                }
                try await Task.sleep(for: .milliseconds(5))
            }
        }
    }

    public func isHealthy(port: Int, health: HealthConfig) async -> Bool {
        answer(port: port) == .healthy
    }
}
