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

    /// Every metric's name (`pushdeploy_<metric>_<unit>`) and help text; computed, as the descriptor is not Sendable.
    private enum Name {
        static var deployments: MetricNameDescriptor {
            make("deployments", "total", "Deployments that reached a final status, by app, kind and status.")
        }
        static var deploymentDuration: MetricNameDescriptor {
            make("deployment_duration", "seconds", "From queued to the final status, by app and kind.")
        }
        static var phaseDuration: MetricNameDescriptor {
            make("phase_duration", "seconds", "How long each phase of a deployment took, by app and phase.")
        }
        static var lastSuccess: MetricNameDescriptor {
            make("last_success_timestamp", "seconds", "When the last deployment or rollback of the app succeeded, in seconds since 1970.")
        }
        static var rollbacks: MetricNameDescriptor {
            make("rollbacks", "total", "Rollbacks that took effect: manual ones, and automatic ones (a failed watch, supervision).")
        }
        static var instanceRestarts: MetricNameDescriptor {
            make("instance_restarts", "total", "Restarts of a crashed or hung instance by supervision, by app and result.")
        }
        static var queueDepth: MetricNameDescriptor {
            make("queue_depth", "", "Deployments running or waiting in the app's queue.")
        }
        static var liveRelease: MetricNameDescriptor {
            make("live_release", "info", "The release nginx serves, by app, version and commit (always 1).")
        }
        static var webhookRequests: MetricNameDescriptor {
            make("webhook_requests", "total", "Webhook requests by sender and HTTP status of the answer.")
        }

        private static func make(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "pushdeploy", metricName: metric, unitName: unit, helpText: help)
        }
    }

    private static let deploymentBuckets: [Duration] = [1, 5, 10, 30, 60, 120, 300, 600, 1200].map { .seconds($0) }
    private static let phaseBuckets: [Duration] = [.milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5), .seconds(10),
                                                   .seconds(30), .seconds(60), .seconds(120), .seconds(300), .seconds(600)]

    public init() {}

    /// A deployment reached its final status.
    public func finished(_ deployment: Deployment) {
        let app = deployment.app
        registry.makeCounter(descriptor: Name.deployments, labels: [("app", app), ("kind", deployment.kind.rawValue),
                                                                    ("status", deployment.status.rawValue)]).increment()
        if let finished = deployment.finishedAt {
            registry.makeDurationHistogram(descriptor: Name.deploymentDuration, labels: [("app", app), ("kind", deployment.kind.rawValue)],
                                           buckets: Self.deploymentBuckets)
                .record(.milliseconds(Int64(finished.timeIntervalSince(deployment.createdAt) * 1000)))
        }
        for phase in deployment.phases {
            guard let seconds = phase.seconds else { continue }
            registry.makeDurationHistogram(descriptor: Name.phaseDuration, labels: [("app", app), ("phase", phase.name.rawValue)],
                                           buckets: Self.phaseBuckets)
                .record(.milliseconds(Int64(seconds * 1000)))
        }
        if deployment.kind == .rollback {
            rollback(app: app, automatic: deployment.trigger.source == .supervisor, status: deployment.status)
        }
        if deployment.status == .rolledBack {
            rollback(app: app, automatic: true, status: .succeeded)
        }
        if deployment.status == .succeeded, deployment.kind != .restart {
            registry.makeGauge(descriptor: Name.lastSuccess, labels: [("app", app)])
                .set(to: (deployment.finishedAt ?? Date()).timeIntervalSince1970)
        }
    }

    private func rollback(app: String, automatic: Bool, status: DeploymentStatus) {
        guard status == .succeeded else { return }
        registry.makeCounter(descriptor: Name.rollbacks, labels: [("app", app), ("trigger", automatic ? "automatic" : "manual")]).increment()
    }

    /// Supervision restarted an instance.
    public func instanceRestarted(app: String, succeeded: Bool) {
        registry.makeCounter(descriptor: Name.instanceRestarts, labels: [("app", app), ("result", succeeded ? "succeeded" : "failed")]).increment()
    }

    /// What runs and waits in an app's queue.
    public func queueDepth(app: String, depth: Int) {
        registry.makeGauge(descriptor: Name.queueDepth, labels: [("app", app)]).set(to: Double(depth))
    }

    /// The release nginx serves now: an info gauge (value 1) labelled with its version and commit.
    public func live(app: String, version: String, commit: String) {
        let previous = liveSeries.withLock { series -> (version: String, commit: String)? in
            defer { series[app] = (version, commit) }
            return series[app]
        }
        if let previous, previous != (version, commit) {
            registry.unregisterGauge(registry.makeGauge(descriptor: Name.liveRelease, labels: Self.liveLabels(app, previous.version, previous.commit)))
        }
        registry.makeGauge(descriptor: Name.liveRelease, labels: Self.liveLabels(app, version, commit)).set(to: 1.0)
    }

    private static func liveLabels(_ app: String, _ version: String, _ commit: String) -> [(String, String)] {
        [("app", app), ("version", version), ("commit", commit)]
    }

    /// A webhook request was answered.
    public func webhook(sender: String, status: Int) {
        registry.makeCounter(descriptor: Name.webhookRequests, labels: [("sender", sender), ("code", String(status))]).increment()
    }

    /// The Prometheus text format.
    public func text() -> String {
        registry.emitToString()
    }
}
