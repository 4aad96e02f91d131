import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
@testable import PushDeploy

/// Commit statuses and notifications against a local server that records each request and checks it against the
/// hosts' documented shapes (GitHub's and Gitea's `POST /repos/{owner}/{repo}/statuses/{sha}`, GitLab's
/// `POST /projects/{id}/statuses/{sha}`, a Slack incoming webhook, a JSON webhook).
@Suite("Commit status and notifications", .serialized)
struct NotifyTests {
    /// The recording receiver, run as a child process; stopped by `stop()`.
    final class Receiver: Sendable {
        let port: Int
        let records: String
        private let pid: pid_t

        init(failures: Int = 0) throws {
            let folder = NSTemporaryDirectory() + "pushdeploy-receiver-" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            records = folder + "/records.jsonl"
            let portFile = folder + "/port"
            pid = try Integration.spawn("/usr/bin/python3", [Integration.root + "/Tests/IntegrationTests/Fixtures/recording-receiver.py",
                                                             records, portFile, String(failures)], outputPath: folder + "/receiver.log")
            var port = 0
            for _ in 0..<100 {
                if let text = try? String(contentsOfFile: portFile, encoding: .utf8), let value = Int(text) { port = value; break }
                usleep(50_000)
            }
            self.port = port
        }

        func requests() -> [[String: Any]] {
            ((try? String(contentsOfFile: records, encoding: .utf8)) ?? "").split(separator: "\n")
                .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        }

        func stop() {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
    }

    private func app(status: CommitStatusConfig?, notify: [NotifyTarget]) -> AppConfig {
        var app = AppConfig(name: "shop", repository: RepositoryConfig(url: "https://github.com/acme/shop.git"), webhooks: WebhookSecrets(),
                            build: BuildConfig(), run: RunConfig(), strategy: .blueGreen(blue: 1, green: 2), health: HealthConfig(),
                            watch: .zero, keepPreviousWarm: true, nginx: nil, keepReleases: 5, hooks: LifecycleHooks())
        app.commitStatus = status
        app.notify = notify
        return app
    }

    private func deployment(_ status: DeploymentStatus) -> Deployment {
        var deployment = Deployment(id: 12, app: "shop", kind: .deploy, trigger: Trigger(source: .github, commit: String(repeating: "a", count: 40)),
                                    strategy: "blue-green")
        deployment.commit = String(repeating: "b", count: 40)
        deployment.version = "1.0.1-20261130"
        if status.isFinished { deployment.finish(status, error: status == .failed ? "the build failed" : nil) }
        return deployment
    }

    /// What the notifier reported as failed for good.
    final class Reports: Sendable {
        let list = Mutex<[String]>([])
    }

    private func notifier(_ reports: Reports? = nil) -> DeploymentNotifier {
        var notifier = DeploymentNotifier(dashboardURL: "https://deploy.example.com/") { problem in reports?.list.withLock { $0.append(problem) } }
        notifier.retryDelays = [.milliseconds(50), .milliseconds(50), .milliseconds(50)]
        return notifier
    }

    @Test(arguments: CommitStatusConfig.Provider.allCases)
    func aCommitStatusHasTheHostsShape(provider: CommitStatusConfig.Provider) async throws {
        let receiver = try Receiver()
        defer { receiver.stop() }
        let config = CommitStatusConfig(provider: provider, apiURL: "http://127.0.0.1:\(receiver.port)/api",
                                        repository: provider == .gitlab ? "acme/shop" : "acme/shop", token: Secret("status-token"))
        let app = app(status: config, notify: [])
        await notifier().notify(.started, deployment: deployment(.building), app: app)?.value
        await notifier().notify(.failed, deployment: deployment(.failed), app: app)?.value
        let requests = receiver.requests()
        #expect(requests.count == 2)
        let sha = String(repeating: "b", count: 40)
        for (request, state) in zip(requests, provider == .gitlab ? ["running", "failed"] : ["pending", "failure"]) {
            let headers = request["headers"] as? [String: String] ?? [:]
            let body = try #require(try JSONSerialization.jsonObject(with: Data((request["body"] as? String ?? "").utf8)) as? [String: String])
            #expect(headers["content-type"] == "application/json")
            #expect(body["state"] == state)
            #expect(body["target_url"] == "https://deploy.example.com/#shop/12")
            #expect(body["description"]?.isEmpty == false)
            switch provider {
            case .github:
                #expect(request["path"] as? String == "/api/repos/acme/shop/statuses/\(sha)")
                #expect(headers["authorization"] == "Bearer status-token")
                #expect(headers["accept"] == "application/vnd.github+json")
                #expect(body["context"] == "pushdeploy/shop")
            case .gitea:
                #expect(request["path"] as? String == "/api/repos/acme/shop/statuses/\(sha)")
                #expect(headers["authorization"] == "token status-token")
                #expect(body["context"] == "pushdeploy/shop")
            case .gitlab:
                #expect(request["path"] as? String == "/api/projects/acme%2Fshop/statuses/\(sha)")
                #expect(headers["private-token"] == "status-token")
                #expect(body["name"] == "pushdeploy/shop")
            }
        }
    }

    @Test("Slack gets text and blocks, a JSON webhook the record; only the events each asked for")
    func notificationsHaveTheirShape() async throws {
        let receiver = try Receiver()
        defer { receiver.stop() }
        let slack = NotifyTarget(kind: .slack, url: Secret("http://127.0.0.1:\(receiver.port)/services/T000/B000/XXXX"), events: [.failed])
        let json = NotifyTarget(kind: .json, url: Secret("http://127.0.0.1:\(receiver.port)/hook"), events: [.succeeded, .failed])
        let app = app(status: nil, notify: [slack, json])
        await notifier().notify(.started, deployment: deployment(.building), app: app)?.value
        await notifier().notify(.failed, deployment: deployment(.failed), app: app)?.value
        let requests = receiver.requests()
        #expect(requests.count == 2, "\(requests)")
        let slackBody = try #require(requests.first { ($0["path"] as? String)?.hasPrefix("/services/") == true }?["body"] as? String)
        let message = try #require(try JSONSerialization.jsonObject(with: Data(slackBody.utf8)) as? [String: Any])
        #expect((message["text"] as? String)?.contains("failed: the build failed") == true)
        #expect((message["blocks"] as? [[String: Any]])?.first?["type"] as? String == "section")
        let jsonBody = try #require(requests.first { $0["path"] as? String == "/hook" }?["body"] as? String)
        let envelope = try #require(try JSONSerialization.jsonObject(with: Data(jsonBody.utf8)) as? [String: Any])
        #expect(envelope["event"] as? String == "failed")
        #expect((envelope["deployment"] as? [String: Any])?["id"] as? Int == 12)
    }

    @Test("a receiver that fails twice then succeeds gets the event once; one that always fails is reported once")
    func retries() async throws {
        let flaky = try Receiver(failures: 2)
        defer { flaky.stop() }
        let target = NotifyTarget(kind: .json, url: Secret("http://127.0.0.1:\(flaky.port)/hook"), events: [.succeeded])
        let reports = Reports()
        await notifier(reports).notify(.succeeded, deployment: deployment(.succeeded), app: app(status: nil, notify: [target]))?.value
        let answered = flaky.requests().map { $0["answered"] as? Int ?? 0 }
        #expect(answered == [500, 500, 201])
        #expect(reports.list.withLock { $0 }.isEmpty)

        let broken = try Receiver(failures: 100)
        defer { broken.stop() }
        let dead = NotifyTarget(kind: .slack, url: Secret("http://127.0.0.1:\(broken.port)/services/secret-path"), events: [.succeeded])
        await notifier(reports).notify(.succeeded, deployment: deployment(.succeeded), app: app(status: nil, notify: [dead]))?.value
        #expect(broken.requests().count == 4)
        let logged = reports.list.withLock { $0 }
        #expect(logged.count == 1)
        #expect(logged.first?.contains("secret-path") == false, "a webhook URL's secret path reached the log")
    }
}
