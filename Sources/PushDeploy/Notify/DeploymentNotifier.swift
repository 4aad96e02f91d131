import Foundation

/// Tells the outside world what a deployment did: the commit status on the git host, and chat or JSON webhooks.
///
/// Every delivery runs in a task of its own with a few retries (1 s, 2 s, 4 s apart): a slow or failing receiver
/// never delays or fails a deployment. A delivery that still fails is written once to the server's log.
public struct DeploymentNotifier: Sendable {
    /// Where the dashboard is, for the commit status's link (`public_url`, else the listen address).
    public var dashboardURL: String
    /// The pause before each retry; tests shorten it.
    public var retryDelays: [Duration] = [.seconds(1), .seconds(2), .seconds(4)]
    /// Where a delivery that failed for good is reported.
    public var report: @Sendable (String) -> Void

    public init(dashboardURL: String, report: @escaping @Sendable (String) -> Void = { _ in }) {
        self.dashboardURL = dashboardURL
        self.report = report
    }

    /// Sends `event` for `deployment` to the app's commit status and notification targets, in the background.
    @discardableResult
    public func notify(_ event: NotifyEvent, deployment: Deployment, app: AppConfig) -> Task<Void, Never>? {
        let targets = app.notify.filter { $0.events.contains(event) }
        let status = event == .instanceRestarted ? nil : app.commitStatus
        guard !targets.isEmpty || (status != nil && deployment.commit != nil) else { return nil }
        return Task.detached { [self] in
            await withTaskGroup(of: Void.self) { group in
                if let status, let commit = deployment.commit ?? deployment.trigger.commit {
                    group.addTask { await deliver(commitStatus(status, event: event, deployment: deployment, commit: commit), what: "commit status") }
                }
                for target in targets {
                    group.addTask { await deliver(notification(target, event: event, deployment: deployment), what: "\(target.kind.rawValue) notification") }
                }
            }
        }
    }

    /// One HTTP request to make.
    struct Delivery: Sendable {
        var url: String
        var headers: [String: String]
        var body: [UInt8]
    }

    private func deliver(_ delivery: Delivery, what: String) async {
        var last = ""
        for attempt in 0...retryDelays.count {
            if attempt > 0 { try? await Task.sleep(for: retryDelays[attempt - 1]) }
            do {
                let answer = try await HTTPProbe.send("POST", url: delivery.url, timeout: .seconds(10), headers: delivery.headers,
                                                      body: delivery.body, bodyLimit: 4096)
                if (200..<300).contains(answer.status) { return }
                last = "status \(answer.status): \(String(decoding: answer.body.prefix(200), as: UTF8.self))"
                // A client error will not change on a retry (a wrong token, a wrong repository).
                if (400..<500).contains(answer.status), answer.status != 408, answer.status != 429 { break }
            } catch {
                last = "\(error)"
            }
        }
        report("\(what) to \(Self.redacted(delivery.url)) failed: \(last)")
    }

    /// A URL for a log line: scheme, host and path only; a Slack webhook's path is its secret.
    static func redacted(_ url: String) -> String {
        guard let parts = URLComponents(string: url), let host = parts.host else { return "(a URL)" }
        return "\(parts.scheme ?? "https")://\(host)/…"
    }

    private func link(_ deployment: Deployment) -> String {
        "\(dashboardURL.hasSuffix("/") ? String(dashboardURL.dropLast()) : dashboardURL)/#\(deployment.app)/\(deployment.id)"
    }

    /// The documented status request of each host.
    func commitStatus(_ config: CommitStatusConfig, event: NotifyEvent, deployment: Deployment, commit: String) -> Delivery {
        let api = config.apiURL.hasSuffix("/") ? String(config.apiURL.dropLast()) : config.apiURL
        let description = Self.sentence(event, deployment).capped(toUTF8: 140)
        let context = "pushdeploy/\(deployment.app)"
        switch config.provider {
        case .github, .gitea:
            // POST /repos/{owner}/{repo}/statuses/{sha}: state pending | success | failure | error.
            let state = switch event {
            case .started: "pending"
            case .succeeded: "success"
            case .failed: "failure"
            case .rolledBack, .autoRollback, .instanceRestarted: "error"
            }
            let body: [String: String] = ["state": state, "target_url": link(deployment), "description": description, "context": context]
            var headers = ["Content-Type": "application/json"]
            if config.provider == .github {
                headers["Authorization"] = "Bearer \(config.token.text)"
                headers["Accept"] = "application/vnd.github+json"
                headers["X-GitHub-Api-Version"] = "2022-11-28"
            } else {
                headers["Authorization"] = "token \(config.token.text)"
            }
            return Delivery(url: "\(api)/repos/\(config.repository)/statuses/\(commit)", headers: headers, body: Self.json(body))
        case .gitlab:
            // POST /projects/{id}/statuses/{sha}: state pending | running | success | failed | canceled.
            let state = switch event {
            case .started: "running"
            case .succeeded: "success"
            case .failed: "failed"
            case .rolledBack, .autoRollback, .instanceRestarted: "canceled"
            }
            let project = config.repository.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? config.repository
            let body: [String: String] = ["state": state, "target_url": link(deployment), "description": description, "name": context]
            return Delivery(url: "\(api)/projects/\(project)/statuses/\(commit)",
                            headers: ["Content-Type": "application/json", "PRIVATE-TOKEN": config.token.text], body: Self.json(body))
        }
    }

    /// A Slack-compatible message (`text` plus blocks), or the deployment record itself as JSON.
    func notification(_ target: NotifyTarget, event: NotifyEvent, deployment: Deployment) -> Delivery {
        switch target.kind {
        case .slack:
            let text = Self.sentence(event, deployment)
            let object: [String: Any] = [
                "text": text,
                "blocks": [
                    ["type": "section", "text": ["type": "mrkdwn", "text": "*\(deployment.app)*: \(text)"]],
                    ["type": "context", "elements": [["type": "mrkdwn", "text": "<\(link(deployment))|deployment \(deployment.id)>"]]],
                ],
            ]
            let body = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])).map(Array.init) ?? []
            return Delivery(url: target.url.text, headers: ["Content-Type": "application/json"], body: body)
        case .json:
            struct Envelope: Encodable {
                var event: String
                var deployment: Deployment
            }
            let body = (try? JSONEncoder.pushDeploy.encode(Envelope(event: event.rawValue, deployment: deployment))).map(Array.init) ?? []
            return Delivery(url: target.url.text, headers: ["Content-Type": "application/json"], body: body)
        }
    }

    static func sentence(_ event: NotifyEvent, _ deployment: Deployment) -> String {
        let what = "\(deployment.kind.rawValue) \(deployment.id)" + (deployment.version.map { " of \($0)" } ?? "")
        return switch event {
        case .started: "\(what) started"
        case .succeeded: "\(what) is live"
        case .failed: "\(what) failed: \(deployment.error ?? deployment.status.rawValue)"
        case .rolledBack: "\(what) was rolled back: \(deployment.error ?? "")"
        case .autoRollback: "automatic rollback: \(deployment.trigger.message ?? what)"
        case .instanceRestarted: "instance restarted: \(deployment.trigger.message ?? what)"
        }
    }

    private static func json(_ object: [String: String]) -> [UInt8] {
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])).map(Array.init) ?? []
    }
}
