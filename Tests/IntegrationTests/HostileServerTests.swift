import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import PushDeploy

/// A real `pushdeploy serve` against hostile input: an old push replayed, a build that reads its environment.
@Suite("Hostile input against a running server", .serialized)
struct HostileServerTests {
    private static let secret = "hostile-\(UUID().uuidString)"

    /// POSTs a GitHub push naming `commit` with a fresh delivery id; returns the deployment id.
    private func push(_ lab: ServeLab, commit: String) throws -> Int {
        let object: [String: Any] = [
            "ref": "refs/heads/main", "after": commit, "deleted": false,
            "repository": ["full_name": "acme/demo", "clone_url": lab.source],
            "pusher": ["name": "replayer"], "head_commit": ["id": commit, "message": "replayed"],
        ]
        let body = try JSONSerialization.data(withJSONObject: object)
        let (status, output, code) = try Integration.postGitHubPush(body, secret: Self.secret, port: lab.serverPort, scratch: lab.scratch)
        guard status == 0, let data = output.data(using: .utf8),
              let id = (try JSONSerialization.jsonObject(with: data) as? [String: Any])?["deployment"] as? Int else {
            throw ServerExited(log: "push answered \(code): \(output)")
        }
        return id
    }

    @Test(.enabled(if: ServeLab.toolsPresent, "needs gradle, java, git, curl and nginx"), .timeLimit(.minutes(6)))
    func anOldPushReplayedNeverMovesProductionBack() async throws {
        let lab = try ServeLab(githubSecret: Self.secret)
        defer { lab.tearDown() }
        try await lab.startServer()
        let old = try lab.git(["rev-parse", "HEAD"])
        let first = try await lab.waitFor(try push(lab, commit: old)) { $0.status.isFinished }
        #expect(first.status == .succeeded, "\(first.error ?? "")")
        let new = try lab.commitChange("a newer commit")
        let second = try await lab.waitFor(try push(lab, commit: new)) { $0.status.isFinished }
        #expect(second.status == .succeeded && second.commit == new)
        let liveBefore = lab.appState().live

        // The old push again, with a fresh delivery id (a replay), then the newer one delivered late.
        for named in [old, new] {
            let replay = try await lab.waitFor(try push(lab, commit: named)) { $0.status.isFinished }
            #expect(replay.trigger.commit == named)
            #expect(replay.commit == new, "a push naming \(named.prefix(7)) deployed \(replay.commit ?? "nothing")")
            #expect(replay.status == .succeeded)
            #expect(replay.note?.contains("already live") == true, "\(replay)")
        }
        #expect(lab.appState().live == liveBefore, "an instance was restarted")
        #expect(lab.servedVersion() == second.version)
    }

    @Test("a build that prints its environment finds no secret of the server's",
          .enabled(if: ServeLab.toolsPresent, "needs gradle, java, git, curl and nginx"), .timeLimit(.minutes(3)))
    func aBuildSeesNoSecret() async throws {
        let dump = NSTemporaryDirectory() + "pushdeploy-env-\(UUID().uuidString).txt"
        defer { try? FileManager.default.removeItem(atPath: dump) }
        let planted = "planted-secret-\(UUID().uuidString)"
        let lab = try ServeLab(githubSecret: Self.secret, buildCommand: ["/bin/sh", "-c", "env > \(dump); exit 3"],
                               serverEnvironment: ["PUSHDEPLOY_TOKEN": planted, "GIT_TOKEN": planted, "AWS_SECRET_ACCESS_KEY": planted])
        defer { lab.tearDown() }
        try await lab.startServer()
        let deployment = try await lab.waitFor(try lab.deploy()) { $0.status.isFinished }
        #expect(deployment.status == .failed)
        let environment = try String(contentsOfFile: dump, encoding: .utf8)
        for secret in [planted, lab.token, Self.secret] {
            #expect(!environment.contains(secret), "the build saw a secret")
        }
        let names = Set(environment.split(separator: "\n").compactMap { $0.split(separator: "=", maxSplits: 1).first.map(String.init) })
        #expect(names.isSubset(of: Set(ChildEnvironment.passedThrough + ["DEPLOY_VERSION", "DEPLOY_COMMIT", "DEPLOY_APP", "DEPLOY_ID", "PWD", "SHLVL", "_"])),
                "\(names.sorted())")
    }
}
