import Foundation
import Synchronization

/// A traffic switch for unit tests: remembers where each app's traffic goes and every switch asked for, and fails on request.
///
/// A class with a lock rather than an actor because ``TrafficSwitch/currentPorts(app:)`` is synchronous.
public final class MemoryTrafficSwitch: TrafficSwitch {
    /// One call to ``route(to:app:expectVersion:log:)``, whether or not it succeeded.
    public struct Route: Sendable, Equatable {
        public var app: String
        public var ports: [Int]
        public var expectVersion: String?
        /// The new release's share in a canary step.
        public var canaryPercent: Int?
        /// False when the switch failed and traffic stayed where it was.
        public var succeeded: Bool

        public init(app: String, ports: [Int], expectVersion: String? = nil, canaryPercent: Int? = nil, succeeded: Bool = true) {
            self.app = app
            self.canaryPercent = canaryPercent
            self.ports = ports
            self.expectVersion = expectVersion
            self.succeeded = succeeded
        }
    }

    private struct State {
        var ports: [String: [Int]]
        var routes: [Route] = []
        var failures: [TrafficError] = []
    }

    private let state: Mutex<State>

    /// A switch where `ports` says where each app's traffic goes at first (no entry: no include file yet).
    public init(ports: [String: [Int]] = [:]) {
        state = Mutex(State(ports: ports))
    }

    /// Makes the next switch fail with `error` (several calls queue several failures) and leave traffic where it is.
    public func failNextRoute(with error: TrafficError) {
        state.withLock { $0.failures.append(error) }
    }

    /// Every switch asked for so far, in order.
    public var routes: [Route] { state.withLock { $0.routes } }

    public func route(to ports: [Int], canaryPercent: Int?, app: AppConfig, expectVersion: String?, log: any DeploymentLog) async throws {
        try Task.checkCancellation()
        let rendered = Result { () throws(TrafficError) in
            try NginxInclude.render(ports, app: app.name, strategy: app.strategy, canaryPercent: canaryPercent)
        }
        let failure: TrafficError? = state.withLock { state in
            var failure: TrafficError?
            if case let .failure(error) = rendered {
                failure = error
            } else if !state.failures.isEmpty {
                failure = state.failures.removeFirst()
            }
            state.routes.append(Route(app: app.name, ports: ports, expectVersion: expectVersion, canaryPercent: canaryPercent,
                                      succeeded: failure == nil))
            if failure == nil { state.ports[app.name] = ports }
            return failure
        }
        if let failure {
            log.line("nginx (memory): switch to \(ports) failed: \(failure)")
            throw failure
        }
        log.line("nginx (memory): switched \(app.name) to \(ports.map(String.init).joined(separator: ", "))"
                 + (canaryPercent.map { " (\($0) % to \(ports[1]))" } ?? ""))
    }

    public func currentPorts(app: AppConfig) -> [Int]? {
        state.withLock { $0.ports[app.name] }
    }
}
