import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
@testable import PushDeploy
@testable import PushDeployServer

@Suite("Webhook routes")
struct WebhookRouteTests {
    @Test func aSignedPushToTheBranchIsQueued() async throws {
        let fixture = try await RouterFixture()
        try await fixture.test { client in
            let body = Payloads.githubPush()
            let (status, json) = try await client.post("/hooks/github", body, githubHeaders(body, delivery: "d-1"))
            #expect(status == .accepted)
            #expect(json["deployment"] as? Int == 1)
            #expect(json["status_url"] as? String == "/apps/shop/deployments/1")
            let record = try #require(try await fixture.service.history.deployment(app: "shop", id: 1))
            #expect(record.trigger.source == .github)
            #expect(record.trigger.commit == Payloads.commit)
            #expect(record.trigger.deliveryId == "d-1")
            #expect(record.trigger.message == "Fix checkout; rm -rf / $(reboot)")
        }
    }

    @Test func aFormEncodedPushIsVerifiedOverTheRawBody() async throws {
        let fixture = try await RouterFixture()
        try await fixture.test { client in
            let body = Payloads.form(["payload": String(decoding: Payloads.githubPush(), as: UTF8.self)])
            var headers = githubHeaders(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            let (status, _) = try await client.post("/hooks/github", body, headers)
            #expect(status == .accepted)
        }
    }

    @Test func aRepeatedDeliveryAnswersTheFirstDeployment() async throws {
        let fixture = try await RouterFixture()
        try await fixture.test { client in
            let body = Payloads.githubPush()
            let (first, firstJSON) = try await client.post("/hooks/github", body, githubHeaders(body, delivery: "same"))
            let (again, againJSON) = try await client.post("/hooks/github", body, githubHeaders(body, delivery: "same"))
            #expect(first == .accepted)
            #expect(again == .ok)
            #expect(againJSON["deployment"] as? Int == firstJSON["deployment"] as? Int)
            #expect(againJSON["duplicate"] as? Bool == true)
        }
    }

    @Test(arguments: [
        ("missing", nil as String?),
        ("wrong secret", RouterFixture.sign(Payloads.githubPush(), secret: "guess")),
        ("not hex", "sha256=zzzz"),
        ("sha1 only", "sha1=0123"),
    ])
    func aMissingOrBadSignatureIs401(_ label: String, signature: String?) async throws {
        let fixture = try await RouterFixture()
        try await fixture.test { client in
            let body = Payloads.githubPush()
            var headers = githubHeaders(body)
            headers["X-Hub-Signature-256"] = signature
            let (status, json) = try await client.post("/hooks/github", body, headers)
            #expect(status == .unauthorized, "\(label)")
            #expect(json["error"] is String)
            #expect(try await fixture.service.history.list(app: "shop").isEmpty)
        }
    }

    @Test func aBodyChangedAfterSigningIs401() async throws {
        let fixture = try await RouterFixture()
        try await fixture.test { client in
            let signed = Payloads.githubPush()
            let tampered = Payloads.githubPush(after: String(repeating: "b", count: 40))
            let (status, _) = try await client.post("/hooks/github", tampered, githubHeaders(signed))
            #expect(status == .unauthorized)
        }
    }

    @Test(arguments: [
        ("ping", Payloads.githubPush(), "ping"),
        ("push", Payloads.githubPush(ref: "refs/heads/feature"), "branch feature is not deployed (shop deploys main)"),
        ("push", Payloads.githubPush(ref: "refs/tags/v1.0"), "tag v1.0 is not a branch"),
        ("push", Payloads.githubPush(after: String(repeating: "0", count: 40), deleted: true), "branch main was deleted"),
        ("push", Payloads.githubPush(repository: "acme/other"), "no app deploys repository acme/other"),
        ("issues", Payloads.githubPush(), "event 'issues' is not a push"),
    ])
    func whatDoesNotDeployIsIgnoredWith200(event: String, body: [UInt8], reason: String) async throws {
        let fixture = try await RouterFixture()
        try await fixture.test { client in
            let (status, json) = try await client.post("/hooks/github", body, githubHeaders(body, event: event))
            #expect(status == .ok)
            #expect(json["ignored"] as? String == reason)
            #expect(try await fixture.service.history.list(app: "shop").isEmpty)
        }
    }

    @Test(arguments: [
        Array("{\"ref\": ".utf8),
        Array("[1, 2, 3]".utf8),
        Array("{\"after\": \"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c\"}".utf8),
        Array("{\"ref\": \"refs/heads/main\", \"after\": \"not-a-commit\"}".utf8),
        [0xff, 0xfe, 0x00],
    ])
    func aMalformedSignedBodyIs400(_ body: [UInt8]) async throws {
        let fixture = try await RouterFixture()
        try await fixture.test { client in
            let (status, json) = try await client.post("/hooks/github", body, githubHeaders(body))
            #expect(status == .badRequest)
            #expect(json["error"] is String)
        }
    }

    @Test func aBodyOverTheLimitIs413() async throws {
        let fixture = try await RouterFixture(bodyLimit: 1024)
        try await fixture.test { client in
            let body = Payloads.githubPush(message: String(repeating: "x", count: 4096))
            let (status, _) = try await client.post("/hooks/github", body, githubHeaders(body))
            #expect(status == .contentTooLarge)
        }
    }

    @Test func gitlabNeedsItsToken() async throws {
        let fixture = try await RouterFixture()
        try await fixture.test { client in
            let body = Payloads.gitlabPush()
            var headers = ["Content-Type": "application/json", "X-Gitlab-Event": "Push Hook",
                           "X-Gitlab-Event-UUID": "13792a34-cac6-4fda-95a8-c58e00a3954e"]
            #expect(try await client.post("/hooks/gitlab", body, headers).0 == .unauthorized)
            headers["X-Gitlab-Token"] = "wrong"
            #expect(try await client.post("/hooks/gitlab", body, headers).0 == .unauthorized)
            headers["X-Gitlab-Token"] = RouterFixture.gitlabToken
            let (status, json) = try await client.post("/hooks/gitlab", body, headers)
            #expect(status == .accepted)
            #expect(json["deployment"] as? Int == 1)
            headers["X-Gitlab-Event"] = "Tag Push Hook"
            #expect(try await client.post("/hooks/gitlab", Payloads.gitlabPush(ref: "refs/tags/v1"), headers).1["ignored"] != nil)
        }
    }

    @Test func travisDeploysOnlyAPassedPushBuild() async throws {
        let fixture = try await RouterFixture()
        try await fixture.test { client in
            func send(_ payload: String, signature: String? = nil) async throws -> (HTTPResponse.Status, [String: Any]) {
                let body = Payloads.form(["payload": payload])
                var headers = ["Content-Type": "application/x-www-form-urlencoded", "Travis-Repo-Slug": "acme/shop",
                               "User-Agent": "Travis CI Notifications"]
                headers["Signature"] = try signature ?? fixture.travisSignature(payload)
                return try await client.post("/hooks/travis", body, headers)
            }
            let passed = Payloads.travisBuild()
            #expect(try await send(passed).0 == .accepted)
            #expect(try await send(passed, signature: try fixture.travisSignature(passed + " ")).0 == .unauthorized)
            #expect(try await send(passed, signature: "not base64!").0 == .unauthorized)
            let pending = try await send(Payloads.travisBuild(state: "started", status: nil))
            #expect(pending.0 == .ok)
            #expect(pending.1["ignored"] as? String == "Travis #42 has not passed (started)")
            let failed = try await send(Payloads.travisBuild(state: "failed", status: 1))
            #expect(failed.1["ignored"] != nil)
            let pullRequest = try await send(Payloads.travisBuild(type: "pull_request"))
            #expect(pullRequest.1["ignored"] as? String == "Travis #42 is a pull_request build, not a push build")
        }
    }

    @Test func noPayloadTextEverReachesTheAnswerOrTheRecordUnbounded() async throws {
        let fixture = try await RouterFixture()
        try await fixture.test { client in
            let body = Payloads.githubPush(message: String(repeating: "m", count: 10_000))
            let (status, _) = try await client.post("/hooks/github", body, githubHeaders(body))
            #expect(status == .accepted)
            let record = try #require(try await fixture.service.history.deployment(app: "shop", id: 1))
            #expect(record.trigger.message?.utf8.count == Trigger.messageLimit)
        }
    }
}
