import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
@testable import PushDeploy
@testable import PushDeployServer

/// `/metrics`, the dashboard page and the log as Server-Sent Events, in-process.
@Suite("Metrics, dashboard and live logs")
struct ObservabilityRouteTests {
    private let bearer = "Bearer \(RouterFixture.apiToken)"

    @Test("/metrics is Prometheus text without a token: webhooks by sender and code, deployments by status, queue depth")
    func metricsAreServed() async throws {
        let fixture = try await RouterFixture()
        try await fixture.test { client in
            let body = Payloads.githubPush()
            #expect(try await client.post("/hooks/github", body, githubHeaders(body)).0 == .accepted)
            #expect(try await client.post("/hooks/github", body, ["X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=00"]).0 == .unauthorized)
            let (status, data) = try await client.get("/metrics", token: nil)
            #expect(status == .ok)
            let text = String(decoding: data, as: UTF8.self)
            #expect(text.contains(#"pushdeploy_webhook_requests_total{sender="github",code="202"} 1"#), "\(text)")
            #expect(text.contains(#"pushdeploy_webhook_requests_total{sender="github",code="401"} 1"#))
            #expect(text.contains(#"pushdeploy_queue_depth{app="shop"} 1"#))
            #expect(text.contains("# HELP pushdeploy_webhook_requests_total"))
        }
        // A deployment that ends is counted with its status and its phases.
        var deployment = Deployment(id: 7, app: "shop", kind: .deploy, trigger: Trigger(source: .manual), strategy: "blue-green",
                                    createdAt: Date(timeIntervalSinceNow: -42))
        deployment.enter(.fetching, at: Date(timeIntervalSinceNow: -40))
        deployment.finish(.succeeded)
        let metrics = DeploymentMetrics()
        metrics.finished(deployment)
        let text = metrics.text()
        #expect(text.contains(#"pushdeploy_deployments_total{app="shop",kind="deploy",status="succeeded"} 1"#), "\(text)")
        #expect(text.contains(#"pushdeploy_deployment_duration_seconds_bucket{app="shop",kind="deploy",le="60.0"} 1"#))
        #expect(text.contains(#"pushdeploy_phase_duration_seconds_count{app="shop",phase="fetching"} 1"#))
        #expect(text.contains("pushdeploy_last_success_timestamp_seconds{app=\"shop\"}"))
    }

    @Test("the live release info gauge follows the live release: the old series goes")
    func liveInfoFollowsTheRelease() {
        let metrics = DeploymentMetrics()
        metrics.live(app: "shop", version: "1.0", commit: "aaa")
        metrics.live(app: "shop", version: "2.0", commit: "bbb")
        let text = metrics.text()
        #expect(text.contains(#"pushdeploy_live_release_info{app="shop",version="2.0",commit="bbb"} 1"#), "\(text)")
        #expect(!text.contains(#"version="1.0""#))
    }

    @Test("the dashboard is one page with its script, public, with a content security policy")
    func theDashboardIsServed() async throws {
        let fixture = try await RouterFixture()
        try await fixture.test { client in
            try await client.execute(uri: "/", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "text/html; charset=utf-8")
                #expect(response.headers[HTTPField.Name("Content-Security-Policy")!]?.contains("connect-src 'self'") == true)
                let page = String(buffer: response.body)
                #expect(page.contains("<script>") && page.contains("sessionStorage"))
                #expect(!page.contains("http://") && !page.contains("https://"), "the page loads nothing from elsewhere")
            }
        }
    }

    @Test("the log as Server-Sent Events: lines with ids, then end; Last-Event-ID resumes after a line")
    func theLogStreamsAsEvents() async throws {
        let history = MemoryDeploymentHistory()
        let fixture = try await RouterFixture(history: history)
        try await fixture.test { client in
            #expect(try await client.post("/apps/shop/deploy", [], ["Authorization": bearer]).0 == .accepted)
            let log = await history.log(app: "shop", id: 1)
            log.write("first line\nsecond line\n")
            await fixture.service.shutdown()   // the parked deployment ends (interrupted)
            let events = try await client.execute(uri: "/apps/shop/deployments/1/log", method: .get,
                                                  headers: [.authorization: bearer, .accept: "text/event-stream"]) { response in
                #expect(response.headers[.contentType] == "text/event-stream")
                var parser = ServerSentEventParser()
                return parser.feed(Array(response.body.readableBytesView))
            }
            let lines = events.filter { $0.name == "line" }
            let texts = lines.map(\.data)
            let first = try #require(texts.firstIndex(of: "first line"), "\(events)")
            #expect(texts[first + 1] == "second line")
            #expect(events.last?.name == "end")
            #expect(events.last?.data.contains("interrupted") == true)
            // Resume after the first line: only what follows it comes.
            let firstID = try #require(lines.first { $0.data == "first line" }?.id)
            let resumed = try await client.execute(uri: "/apps/shop/deployments/1/log", method: .get,
                                                   headers: [.authorization: bearer, .accept: "text/event-stream",
                                                             HTTPField.Name("Last-Event-ID")!: firstID]) { response in
                var parser = ServerSentEventParser()
                return parser.feed(Array(response.body.readableBytesView))
            }
            #expect(resumed.filter { $0.name == "line" }.map(\.data).first == "second line", "\(resumed)")
        }
    }

    @Test("the event parser reads fields, multi-line data, comments and CRLF")
    func theParserReadsTheFormat() {
        var parser = ServerSentEventParser()
        #expect(parser.feed(Array(": hello\r\nevent: line\nid: 7\ndata: a\ndata: b\n".utf8)).isEmpty)
        let events = parser.feed(Array("\r\ndata: plain\n\n".utf8))
        #expect(events == [ServerSentEvent(name: "line", data: "a\nb", id: "7"), ServerSentEvent(name: "message", data: "plain", id: "7")])
    }
}
