import Foundation

/// Checks an instance with HTTP GETs of `health.path` on `127.0.0.1:<port>`.
public struct HTTPHealthChecker: HealthChecker {
    public var host: String
    /// Each request's timeout; nil means `interval * 4`, kept between 1 s (a cold JVM's first answer is slow) and 2 s.
    public var requestTimeout: Duration?
    /// How often `waitUntilHealthy` writes a "still waiting" line to the deployment log.
    public var progressEvery: Duration = .seconds(10)

    public init(host: String = "127.0.0.1", requestTimeout: Duration? = nil) {
        self.host = host
        self.requestTimeout = requestTimeout
    }

    public func waitUntilHealthy(port: Int, health: HealthConfig, log: any DeploymentLog,
                                 isAlive: @escaping @Sendable () async -> Bool) async throws {
        let clock = ContinuousClock()
        let started = clock.now
        let deadline = started + health.startupTimeout
        var lastProgress = started
        log.line("waiting for \(url(port: port, health: health)) to answer \(expectation(health)) "
            + "(every \(DurationParser.format(health.interval)), up to \(DurationParser.format(health.startupTimeout)))")
        var last = Outcome.failed(status: nil, reason: "not probed yet")
        while true {
            try Task.checkCancellation()
            last = await probe(port: port, health: health, timeout: min(timeout(for: health), max(deadline - clock.now, .milliseconds(100))))
            try Task.checkCancellation()
            if case .healthy = last {
                log.line("port \(port) is healthy after \(String(format: "%.1f", (clock.now - started).seconds)) s")
                return
            }
            guard case let .failed(status, reason) = last else { continue }
            // Checked after each failed probe: a process that is gone never turns healthy.
            guard await isAlive() else { throw HealthError.processExited(port: port, lastStatus: status, lastError: reason) }
            guard clock.now < deadline else { throw HealthError.timedOut(after: health.startupTimeout, lastStatus: status, lastError: reason) }
            if clock.now - lastProgress >= progressEvery {
                lastProgress = clock.now
                log.line("port \(port) not healthy yet after \(Int((clock.now - started).seconds)) s: \(status.map { "status \($0); " } ?? "")\(reason)")
            }
            try await Task.sleep(for: min(health.interval, max(deadline - clock.now, .zero)))
        }
    }

    public func isHealthy(port: Int, health: HealthConfig) async -> Bool {
        if case .healthy = await probe(port: port, health: health, timeout: timeout(for: health)) { return true }
        return false
    }

    /// One probe and its verdict, with the reason when it is not healthy.
    public func check(port: Int, health: HealthConfig) async -> (healthy: Bool, status: Int?, reason: String?) {
        switch await probe(port: port, health: health, timeout: timeout(for: health)) {
        case let .healthy(status): (true, status, nil)
        case let .failed(status, reason): (false, status, reason)
        }
    }

    private enum Outcome {
        case healthy(status: Int)
        case failed(status: Int?, reason: String)
    }

    private func probe(port: Int, health: HealthConfig, timeout: Duration) async -> Outcome {
        do {
            let (status, body) = try await HTTPProbe.get(host: host, port: port, path: health.path, timeout: timeout)
            guard status == health.expectStatus else {
                return .failed(status: status, reason: "expected status \(health.expectStatus), body: \(Self.excerpt(body))")
            }
            if let expected = health.expectBody, !body.contains(expected) {
                return .failed(status: status, reason: "body does not contain \"\(expected)\": \(Self.excerpt(body))")
            }
            return .healthy(status: status)
        } catch let error as HealthError {
            if case let .request(_, reason) = error { return .failed(status: nil, reason: reason) }
            return .failed(status: nil, reason: error.description)
        } catch {
            return .failed(status: nil, reason: "\(error)")
        }
    }

    private func timeout(for health: HealthConfig) -> Duration {
        requestTimeout ?? min(max(health.interval * 4, .seconds(1)), .seconds(2))
    }

    private func url(port: Int, health: HealthConfig) -> String {
        HTTPProbe.url(host: host, port: port, path: health.path)
    }

    private func expectation(_ health: HealthConfig) -> String {
        "\(health.expectStatus)" + (health.expectBody.map { " with \"\($0)\"" } ?? "")
    }

    private static func excerpt(_ body: String) -> String {
        let flat = body.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "\n", with: " ")
        return flat.count > 200 ? String(flat.prefix(200)) + "…" : (flat.isEmpty ? "(empty)" : flat)
    }
}
