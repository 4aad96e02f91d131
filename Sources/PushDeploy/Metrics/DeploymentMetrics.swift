import Foundation
import Prometheus
import Synchronization

/// pushdeploy's Prometheus metrics, one registry per server, written as `GET /metrics` answers them.
///
/// The metric types are swift-prometheus's, which are swift-metrics handlers; they are made through the registry
/// directly so that each has its help text (`promtool check metrics` asks for it).
public final class DeploymentMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    /// The labels of the live release info series of each app, to retire it when the release changes.
    private let liveSeries = Mutex<[String: (version: String, commit: String)]>([:])

    private static let deploymentBuckets: [Duration] = [1, 5, 10, 30, 60, 120, 300, 600, 1200].map { .seconds($0) }
    private static let phaseBuckets: [Duration] = [.milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5), .seconds(10),
                                                   .seconds(30), .seconds(60), .seconds(120), .seconds(300), .seconds(600)]

    public init() {}

    /// A deployment reached its final status.
    public func finished(_ deployment: Deployment) {
        let app = deployment.app
        registry.makeCounter(name: "pushdeploy_deployments_total", labels: [("app", app), ("kind", deployment.kind.rawValue),
                                                                             ("status", deployment.status.rawValue)],
                             help: "Deployments that reached a final status, by app, kind and status.").increment()
        if let finished = deployment.finishedAt {
            registry.makeDurationHistogram(name: "pushdeploy_deployment_duration_seconds", labels: [("app", app), ("kind", deployment.kind.rawValue)],
                                           buckets: Self.deploymentBuckets,
                                           help: "From queued to the final status, by app and kind.")
                .record(.milliseconds(Int64(finished.timeIntervalSince(deployment.createdAt) * 1000)))
        }
        for phase in deployment.phases {
            guard let seconds = phase.seconds else { continue }
            registry.makeDurationHistogram(name: "pushdeploy_phase_duration_seconds", labels: [("app", app), ("phase", phase.name.rawValue)],
                                           buckets: Self.phaseBuckets, help: "How long each phase of a deployment took, by app and phase.")
                .record(.milliseconds(Int64(seconds * 1000)))
        }
        if deployment.kind == .rollback {
            rollback(app: app, automatic: deployment.trigger.source == .supervisor, status: deployment.status)
        }
        if deployment.status == .rolledBack {
            rollback(app: app, automatic: true, status: .succeeded)
        }
        if deployment.status == .succeeded, deployment.kind != .restart {
            registry.makeGauge(name: "pushdeploy_last_success_timestamp_seconds", labels: [("app", app)],
                               help: "When the last deployment or rollback of the app succeeded, in seconds since 1970.")
                .set(to: (deployment.finishedAt ?? Date()).timeIntervalSince1970)
        }
    }

    private func rollback(app: String, automatic: Bool, status: DeploymentStatus) {
        guard status == .succeeded else { return }
        registry.makeCounter(name: "pushdeploy_rollbacks_total", labels: [("app", app), ("trigger", automatic ? "automatic" : "manual")],
                             help: "Rollbacks that took effect: manual ones, and automatic ones (a failed watch, supervision).").increment()
    }

    /// Supervision restarted an instance.
    public func instanceRestarted(app: String, succeeded: Bool) {
        registry.makeCounter(name: "pushdeploy_instance_restarts_total", labels: [("app", app), ("result", succeeded ? "succeeded" : "failed")],
                             help: "Restarts of a crashed or hung instance by supervision, by app and result.").increment()
    }

    /// What runs and waits in an app's queue.
    public func queueDepth(app: String, depth: Int) {
        registry.makeGauge(name: "pushdeploy_queue_depth", labels: [("app", app)],
                           help: "Deployments running or waiting in the app's queue.").set(to: Double(depth))
    }

    /// The release nginx serves now: an info gauge (value 1) labelled with its version and commit.
    public func live(app: String, version: String, commit: String) {
        let previous = liveSeries.withLock { series -> (version: String, commit: String)? in
            defer { series[app] = (version, commit) }
            return series[app]
        }
        if let previous, previous != (version, commit) {
            registry.unregisterGauge(registry.makeGauge(name: "pushdeploy_live_release_info", labels: Self.liveLabels(app, previous.version, previous.commit),
                                                        help: Self.liveHelp))
        }
        registry.makeGauge(name: "pushdeploy_live_release_info", labels: Self.liveLabels(app, version, commit), help: Self.liveHelp).set(to: 1.0)
    }

    private static let liveHelp = "The release nginx serves, by app, version and commit (always 1)."

    private static func liveLabels(_ app: String, _ version: String, _ commit: String) -> [(String, String)] {
        [("app", app), ("version", version), ("commit", commit)]
    }

    /// A webhook request was answered.
    public func webhook(sender: String, status: Int) {
        registry.makeCounter(name: "pushdeploy_webhook_requests_total", labels: [("sender", sender), ("code", String(status))],
                             help: "Webhook requests by sender and HTTP status of the answer.").increment()
    }

    /// The Prometheus text format.
    public func text() -> String {
        registry.emitToString()
    }
}
