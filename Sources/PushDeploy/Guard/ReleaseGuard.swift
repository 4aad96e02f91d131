import Foundation

/// The guard of one deployment: follows nginx's access log from the moment before the switch and judges the new
/// release's backends by it, against the stable release's when both take requests (a canary step).
public final class ReleaseGuard {
    public let config: GuardConfig
    private let follower: AccessLogFollower
    private var window: BackendWindow

    /// The guard for `app`, or nil when it has none or cannot have one (said in `log`: no access log to read).
    /// Open it before the switch, so that it sees every request the new release gets.
    public static func open(for app: AppConfig, log: any DeploymentLog) -> ReleaseGuard? {
        guard let config = app.guardConfig else { return nil }
        guard let path = app.nginx?.accessLog else {
            log.line("guard: off, because nginx.access_log is not set (the guard reads nginx's access log)")
            return nil
        }
        return ReleaseGuard(config: config, accessLog: path)
    }

    public init(config: GuardConfig, accessLog path: String) {
        self.config = config
        follower = AccessLogFollower(path: path)
        window = BackendWindow(window: config.window)
    }

    /// Reads what nginx logged since the last look and judges `ports`, which get `percent` of the requests (against
    /// `stable`, the ports of the release that takes the rest, when given).
    public func look(at ports: Set<Int>, percent: Int = 100, stable: Set<Int>? = nil) -> GuardStep {
        window.add(follower.read())
        let release = window.figures(ports: ports)
        let baseline = stable.map { window.figures(ports: $0) }
        let reason = release.verdict(config, against: baseline)
        let verdict: GuardStep.Verdict = reason != nil ? .tripped : release.requests >= config.minRequests ? .passed : .unjudged
        return GuardStep(percent: percent, release: release, stable: baseline, verdict: verdict, reason: reason)
    }
}

/// What the guard saw of the new release in one step of a deployment: a canary step, or the watch after the switch.
public struct GuardStep: Codable, Sendable, Equatable, CustomStringConvertible {
    public enum Verdict: String, Codable, Sendable {
        /// Enough requests reached the new release, and it stayed within the guard's limits.
        case passed
        /// It broke a limit: traffic went back.
        case tripped
        /// Fewer requests than `min_requests` reached it (and too few failed to settle it): the health check alone watched it.
        case unjudged
    }

    /// The share of requests the new release got, in percent (100: all of them, the watch after the switch).
    public var percent: Int
    /// The new release's figures in the guard's window at the end of the step.
    public var release: GuardFigures
    /// The stable release's figures in the same window (a canary step).
    public var stable: GuardFigures?
    public var verdict: Verdict
    /// Why it tripped.
    public var reason: String?

    public init(percent: Int, release: GuardFigures, stable: GuardFigures?, verdict: Verdict, reason: String?) {
        self.percent = percent
        self.release = release
        self.stable = stable
        self.verdict = verdict
        self.reason = reason
    }

    public var description: String {
        let judged = switch verdict {
        case .passed: "passed"
        case .tripped: "tripped"
        case .unjudged: "not judged (fewer requests than min_requests)"
        }
        return "\(percent) %: new release \(release)" + (stable.map { "; stable release \($0)" } ?? "") + ": \(judged)"
    }
}
