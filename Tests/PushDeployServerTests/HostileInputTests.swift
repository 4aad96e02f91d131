import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
@testable import PushDeploy
@testable import PushDeployServer

/// What an attacker sends at the routes: a forged Travis notification, a rollback to a path, unbounded fields.
@Suite("Hostile input")
struct HostileInputTests {
    private let authorized = ["Authorization": "Bearer \(RouterFixture.apiToken)", "Content-Type": "application/json"]

    @Test("a Travis notification signed for another repository, sent with this app's slug in the header, deploys nothing")
    func aForgedTravisSlugIsIgnored() async throws {
        let fixture = try await RouterFixture()
        try await fixture.test { client in
            // Travis signs every customer's notifications with its one key: this one is genuine, for evil/other.
            let payload = Payloads.travisBuild(repository: ("evil", "other"))
            let headers = ["Content-Type": "application/x-www-form-urlencoded", "Travis-Repo-Slug": "acme/shop",
                           "Signature": try fixture.travisSignature(payload)]
            let (status, json) = try await client.post("/hooks/travis", Payloads.form(["payload": payload]), headers)
            #expect(status == .ok)
            #expect((json["ignored"] as? String)?.contains("evil/other") == true, "\(json)")
            #expect(try await fixture.service.history.list(app: "shop").isEmpty)
            // The same notification for this repository deploys.
            let genuine = Payloads.travisBuild()
            let answer = try await client.post("/hooks/travis", Payloads.form(["payload": genuine]),
                                               ["Content-Type": "application/x-www-form-urlencoded", "Signature": try fixture.travisSignature(genuine)])
            #expect(answer.0 == .accepted)
        }
    }

    @Test(arguments: ["..", "%2e%2e", "../000001", "a\\b", "/etc/passwd", ".hidden", "1.0/../../x", "nothing-like-this", "99"])
    func aRollbackToSomethingThatIsNotThereIs400(to: String) async throws {
        let fixture = try await RouterFixture()
        try await fixture.test { client in
            let body = Array(try JSONSerialization.data(withJSONObject: ["to": to]))
            let (status, json) = try await client.post("/apps/shop/rollback", body, authorized)
            #expect(status == .badRequest, "\(to): \(status) \(json)")
            #expect(json["error"] is String)
            #expect(try await fixture.service.history.list(app: "shop").isEmpty, "\(to) was queued")
        }
    }

    @Test("a rollback to a deployment id that exists is accepted")
    func aRollbackToAKnownDeploymentIsQueued() async throws {
        let fixture = try await RouterFixture()
        try await fixture.test { client in
            _ = try await client.post("/apps/shop/deploy", [], authorized)
            let (status, _) = try await client.post("/apps/shop/rollback", Array("{\"to\": \"1\"}".utf8), authorized)
            #expect(status == .accepted)
        }
    }

    @Test("a hook request without the sender's signature header is refused before its body is read")
    func anUnsignedHookIsRefusedBeforeItsBody() async throws {
        let fixture = try await RouterFixture(bodyLimit: 1024)
        try await fixture.test { client in
            // Larger than the body limit: were the body read first, the answer would be 413.
            let big = [UInt8](repeating: UInt8(ascii: "x"), count: 64 << 10)
            for (path, event) in [("/hooks/github", ["X-GitHub-Event": "push"]), ("/hooks/gitlab", ["X-Gitlab-Event": "Push Hook"]),
                                  ("/hooks/travis", [:])] {
                let (status, json) = try await client.post(path, big, event.merging(["Content-Type": "application/json"]) { $1 })
                #expect(status == .unauthorized, "\(path): \(status)")
                #expect((json["error"] as? String)?.hasPrefix("missing ") == true, "\(json)")
            }
        }
    }

    @Test("fields kept from a push are bounded: 256 bytes for names, 1 KiB for the message")
    func storedFieldsAreBounded() async throws {
        let fixture = try await RouterFixture()
        try await fixture.test { client in
            let body = Payloads.githubPush(message: String(repeating: "é", count: 5000))
            let (status, _) = try await client.post("/hooks/github", body, githubHeaders(body, delivery: String(repeating: "d", count: 5000)))
            #expect(status == .accepted)
            let record = try #require(try await fixture.service.history.deployment(app: "shop", id: 1))
            #expect(record.trigger.deliveryId?.utf8.count == 256)
            #expect((record.trigger.message?.utf8.count ?? 0) <= 1024 && (record.trigger.message?.utf8.count ?? 0) >= 1023)
            let (listed, _) = try await client.get("/apps/shop/deployments?limit=100000")
            #expect(listed == .ok)
        }
    }
}
