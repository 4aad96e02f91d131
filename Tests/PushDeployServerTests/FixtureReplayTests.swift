import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
@testable import PushDeploy
@testable import PushDeployServer

/// Replays every real sample in `../shared/fixtures/webhooks` with the headers its sender sets.
@Suite("Real webhook samples")
struct FixtureReplayTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../../shared/fixtures/webhooks").standardizedFileURL.path

    static var samples: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
    }

    static var present: Bool { !samples.isEmpty }

    @Test(.enabled(if: FixtureReplayTests.present, "../shared/fixtures/webhooks is not here"))
    func everySampleGetsTheRightAnswer() async throws {
        let travis = _RSAKeyHolder(key: RouterFixture.sharedTravisKey)
        let apps = [
            RouterFixture.app("hello", url: "https://github.com/Codertocat/Hello-World.git", branch: "master", ports: (18101, 18102)),
            RouterFixture.app("gitea", url: "https://try.gitea.io/kostekIV/test.git", branch: "d", ports: (18103, 18104)),
            RouterFixture.app("gitlab", url: "https://gitlab.com/tomaszkolek0/my-awesome-project.git", branch: "tomek", ports: (18105, 18106)),
            RouterFixture.app("fhir", url: "https://github.com/hl7-fhir/fhir-svn.git", branch: "master", ports: (18107, 18108), travisPEM: travis.publicPEM),
            RouterFixture.app("travis", url: "https://github.com/sathwikshetty33/travis-test.git", branch: "main", ports: (18109, 18110), travisPEM: travis.publicPEM),
        ]
        let replay = try await RouterFixture(apps: apps)
        try await replay.test { client in
            var checked: Set<String> = []
            for name in Self.samples {
                let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: "\(Self.folder)/\(name)")))
                let (route, body, headers) = try Self.request(for: name, bytes, travis: travis)
                let (status, json) = try await client.post(route, body, headers)
                let expected = Self.expected[name] ?? .ignored
                switch expected {
                case .deploys:
                    #expect(status == .accepted, "\(name): \(json)")
                    #expect(json["deployment"] is Int, "\(name)")
                case .ignored:
                    #expect(status == .ok, "\(name): \(json)")
                    #expect(json["ignored"] is String, "\(name)")
                }
                // Sent again with its delivery id, a deploying sample is recognised as a repeat.
                if expected == .deploys {
                    let (again, againJSON) = try await client.post(route, body, headers)
                    #expect(again == .ok, "\(name) again")
                    #expect(againJSON["deployment"] as? Int == json["deployment"] as? Int)
                }
                // With a wrong signature every sample is refused.
                var forged = headers
                for key in ["X-Hub-Signature-256", "X-Gitea-Signature"] where forged[key] != nil {
                    forged[key] = RouterFixture.sign(body, secret: "wrong")
                }
                if forged["X-Gitlab-Token"] != nil { forged["X-Gitlab-Token"] = "wrong" }
                if forged["Signature"] != nil { forged["Signature"] = try travis.sign("forged") }
                #expect(try await client.post(route, body, forged).0 == .unauthorized, "\(name) forged")
                checked.insert(name)
            }
            #expect(checked.count == Self.samples.count)
            #expect(checked.contains("github-push-with-new-branch.json"))
        }
    }

    enum Expectation { case deploys, ignored }

    static let expected: [String: Expectation] = [
        "github-push-with-new-branch.json": .deploys,
        "github-push-with-no-username-committer.json": .deploys,
        "gitea-push.json": .deploys,
        "gitlab-push.json": .deploys,
        "travis-build-passed-push.json": .deploys,
    ]

    static func request(for name: String, _ bytes: [UInt8], travis: _RSAKeyHolder) throws -> (String, [UInt8], [String: String]) {
        let delivery = "delivery-\(name)"
        if name.hasPrefix("github-") {
            let event = name.hasPrefix("github-ping") ? "ping" : "push"
            return ("/hooks/github", bytes, [
                "Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": delivery,
                "X-GitHub-Hook-ID": "30", "X-Hub-Signature-256": RouterFixture.sign(bytes), "User-Agent": "GitHub-Hookshot/044aadd",
            ])
        }
        if name.hasPrefix("gitea-") {
            let hex = String(RouterFixture.sign(bytes).dropFirst(7))
            return ("/hooks/github", bytes, [
                "Content-Type": "application/json", "X-Gitea-Event": "push", "X-Gitea-Delivery": delivery,
                "X-GitHub-Event": "push", "X-GitHub-Delivery": delivery, "X-Gogs-Event": "push", "X-Gitea-Signature": hex,
            ])
        }
        if name.hasPrefix("gitlab-") {
            return ("/hooks/gitlab", bytes, [
                "Content-Type": "application/json", "X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": RouterFixture.gitlabToken,
                "X-Gitlab-Event-UUID": delivery, "User-Agent": "GitLab/15.0.0",
            ])
        }
        // Travis: the file is the decoded payload, pretty-printed; Travis sends it compact, form-encoded, signed as sent.
        let object = try JSONSerialization.jsonObject(with: Data(bytes))
        let compact = String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes]), as: UTF8.self)
        let slug = ((object as? [String: Any])?["repository"] as? [String: Any]).map { "\($0["owner_name"] ?? "")/\($0["name"] ?? "")" } ?? ""
        return ("/hooks/travis", Payloads.form(["payload": compact]), [
            "Content-Type": "application/x-www-form-urlencoded", "Travis-Repo-Slug": slug,
            "User-Agent": "Travis CI Notifications", "Signature": try travis.sign(compact),
        ])
    }
}

import _CryptoExtras
import Crypto

/// A Travis-like signing key made by the test.
struct _RSAKeyHolder: Sendable {
    let key: _RSA.Signing.PrivateKey

    var publicPEM: String { key.publicKey.pemRepresentation }

    func sign(_ payload: String) throws -> String {
        try key.signature(for: Insecure.SHA1.hash(data: Array(payload.utf8)), padding: .insecurePKCS1v1_5)
            .rawRepresentation.base64EncodedString()
    }
}
