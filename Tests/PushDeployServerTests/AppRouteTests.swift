import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
@testable import PushDeploy
@testable import PushDeployServer

@Suite("API routes")
struct AppRouteTests {
    private func authorized(_ extra: [String: String] = [:]) -> [String: String] {
        ["Authorization": "Bearer \(RouterFixture.apiToken)", "Content-Type": "application/json"].merging(extra) { $1 }
    }

    @Test func aManualDeployNeedsTheToken() async throws {
        let fixture = try await RouterFixture()
        try await fixture.test { client in
            #expect(try await client.post("/apps/shop/deploy", [], [:]).0 == .unauthorized)
            #expect(try await client.post("/apps/shop/deploy", [], ["Authorization": "Bearer nope"]).0 == .unauthorized)
            #expect(try await client.post("/apps/shop/deploy", [], ["Authorization": "Basic \(RouterFixture.apiToken)"]).0 == .unauthorized)
            let (status, json) = try await client.post("/apps/shop/deploy", [], authorized())
            #expect(status == .accepted)
            #expect(json["deployment"] as? Int == 1)
            #expect(try await fixture.service.history.deployment(app: "shop", id: 1)?.trigger.source == .manual)
        }
    }

    @Test func aManualDeployMayNameACommitOrARef() async throws {
        let fixture = try await RouterFixture()
        try await fixture.test { client in
            let body = Array("{\"commit\": \"ABC1234\", \"ref\": \"release/2.0\"}".utf8)
            let (status, json) = try await client.post("/deploy", body, authorized())
            #expect(status == .accepted)
            let record = try #require(try await fixture.service.history.deployment(app: "shop", id: json["deployment"] as! Int))
            #expect(record.trigger.commit == "abc1234")
            #expect(record.trigger.ref == "refs/heads/release/2.0")
        }
    }

    @Test(arguments: [
        "{\"commit\": \"$(reboot)\"}", "{\"ref\": \"main; rm -rf /\"}", "{\"ref\": \"--upload-pack=x\"}", "{\"commit\": ",
        "[\"main\"]",
    ])
    func aBadManualBodyIs400(_ body: String) async throws {
        let fixture = try await RouterFixture()
        try await fixture.test { client in
            let (status, json) = try await client.post("/apps/shop/deploy", Array(body.utf8), authorized())
            #expect(status == .badRequest)
            #expect(json["error"] is String)
        }
    }

    @Test func anUnknownAppIs404() async throws {
        let fixture = try await RouterFixture()
        try await fixture.test { client in
            let (status, json) = try await client.post("/apps/nope/deploy", [], authorized())
            #expect(status == .notFound)
            #expect(json["error"] as? String == "no app named nope")
        }
    }

    @Test func withSeveralAppsTheShortRoutesAskForTheApp() async throws {
        let fixture = try await RouterFixture(apps: [
            RouterFixture.app("shop", url: "https://github.com/acme/shop.git", branch: "main"),
            RouterFixture.app("admin", url: "https://github.com/acme/admin.git", branch: "main", ports: (18091, 18092)),
        ])
        try await fixture.test { client in
            let (status, _) = try await client.post("/deploy", [], authorized())
            #expect(status == .notFound)
            #expect(try await client.post("/apps/admin/deploy", [], authorized()).0 == .accepted)
        }
    }

    @Test func historyStatusAndLogAnswer() async throws {
        let fixture = try await RouterFixture()
        try await fixture.test { client in
            _ = try await client.post("/apps/shop/deploy", [], authorized())
            _ = try await client.post("/apps/shop/deploy", [], authorized())
            #expect(try await client.get("/apps/shop/deployments", token: nil).0 == .unauthorized)
            let (listStatus, list) = try await client.get("/apps/shop/deployments")
            #expect(listStatus == .ok)
            let deployments = try JSONDecoder.pushDeploy.decode([Deployment].self, from: list)
            #expect(deployments.map(\.id) == [2, 1])
            let (oneStatus, one) = try await client.get("/deployments/1")
            #expect(oneStatus == .ok)
            #expect(try JSONDecoder.pushDeploy.decode(Deployment.self, from: one).id == 1)
            #expect(try await client.get("/apps/shop/deployments/99").0 == .notFound)
            #expect(try await client.get("/apps/shop/deployments/abc").0 == .badRequest)

            let (logStatus, log) = try await client.get("/apps/shop/deployments/1/log")
            #expect(logStatus == .ok)
            #expect(String(decoding: log, as: UTF8.self).contains("deploy 1 of shop started"))

            let (statusCode, statusBody) = try await client.get("/apps/shop/status")
            #expect(statusCode == .ok)
            let status = try JSONDecoder.pushDeploy.decode(AppStatus.self, from: statusBody)
            #expect(status.queue.running?.id == 1)
            #expect(status.queue.waiting.map(\.id) == [2])
            #expect(status.live == nil)
        }
    }

    @Test func aRollbackIsQueuedAtTheFront() async throws {
        let fixture = try await RouterFixture()
        try fixture.storeRelease("1.0.0-2026")
        try await fixture.test { client in
            _ = try await client.post("/apps/shop/deploy", [], authorized())
            #expect(try await client.post("/apps/shop/rollback", [], [:]).0 == .unauthorized)
            let (status, json) = try await client.post("/apps/shop/rollback", Array("{\"to\": \"1.0.0-2026\"}".utf8), authorized())
            #expect(status == .accepted)
            let id = try #require(json["deployment"] as? Int)
            let record = try #require(try await fixture.service.history.deployment(app: "shop", id: id))
            #expect(record.kind == .rollback)
            #expect(record.rollbackTo == "1.0.0-2026")
            // The running deployment is cancelled by the rollback; its record says so once its task has ended.
            var first = try await fixture.service.history.deployment(app: "shop", id: 1)
            for _ in 0..<100 where first?.status != .cancelled {
                try await Task.sleep(for: .milliseconds(20))
                first = try await fixture.service.history.deployment(app: "shop", id: 1)
            }
            #expect(first?.status == .cancelled)
            #expect(first?.error == "cancelled by rollback \(id)")
        }
    }

    @Test func healthzNeedsNoToken() async throws {
        let fixture = try await RouterFixture()
        try await fixture.test { client in
            let (status, body) = try await client.get("/healthz", token: nil)
            #expect(status == .ok)
            #expect(String(decoding: body, as: UTF8.self).contains("ok"))
        }
    }
}

@Suite("Answers and records agree")
struct RecordOnDiskTests {
    private let headers = ["Authorization": "Bearer \(RouterFixture.apiToken)", "Content-Type": "application/json"]

    /// The record file as it is on disk, decoded the way the API's answers are.
    private func onDisk(_ fixture: RouterFixture, _ id: Int) throws -> Any {
        let path = "\(fixture.directory)/deployments/shop/\(String(format: "%06d", id)).json"
        return try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    @Test("right after a 202, the record file exists and equals what the API answers for it")
    func theRecordIsOnDiskWhenTheAnswerIsSent() async throws {
        let fixture = try await RouterFixture()
        try await fixture.test { client in
            var ids: [Int] = []
            let (deployStatus, deployed) = try await client.post("/apps/shop/deploy", [], headers)
            #expect(deployStatus == .accepted)
            ids.append(try #require(deployed["deployment"] as? Int))
            #expect(FileManager.default.fileExists(atPath: "\(fixture.directory)/deployments/shop/\(String(format: "%06d", ids[0])).json"))
            let body = Payloads.githubPush()
            let (hookStatus, hooked) = try await client.post("/hooks/github", body, [
                "X-GitHub-Event": "push", "X-GitHub-Delivery": "d-on-disk", "Content-Type": "application/json",
                "X-Hub-Signature-256": RouterFixture.sign(body),
            ])
            #expect(hookStatus == .accepted)
            ids.append(try #require(hooked["deployment"] as? Int))
            let (rollbackStatus, rolled) = try await client.post("/apps/shop/rollback", [], headers)
            #expect(rollbackStatus == .accepted)
            ids.append(try #require(rolled["deployment"] as? Int))
            for id in ids {
                // The runner may move a deployment to its next phase between the two reads; a real disagreement persists.
                var same = false
                for _ in 0..<5 where !same {
                    let (status, answer) = try await client.get("/apps/shop/deployments/\(id)")
                    #expect(status == .ok)
                    let answered = try JSONSerialization.jsonObject(with: answer) as! [String: Any]
                    same = NSDictionary(dictionary: answered) == NSDictionary(dictionary: try onDisk(fixture, id) as! [String: Any])
                    if !same { try await Task.sleep(for: .milliseconds(100)) }
                }
                #expect(same, "deployment \(id): the answer and the file differ")
            }
        }
    }
}
