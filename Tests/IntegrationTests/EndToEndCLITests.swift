import Foundation
import Testing
@testable import PushDeploy

/// The real server and CLI: a push-like trigger fetched with libgit2 and built with Gradle, read back through the CLI.
@Suite("End to end: serve, deploy, history", .serialized)
struct EndToEndCLITests {
    @Test(.enabled(if: ServeLab.toolsPresent, "needs gradle, java, git, curl and nginx"))
    func pushToLiveThenRollBackWithTheCLI() async throws {
        let lab = try ServeLab()
        defer { lab.tearDown() }
        let first = try lab.git(["rev-parse", "HEAD"])
        let check = try Integration.run(Integration.executable, ["check", "--config", lab.configPath])
        #expect(check.status == 0, "\(check.output)")
        try await lab.startServer()

        let refused = try Integration.run(Integration.executable, ["status"],
                                          environment: ["PUSHDEPLOY_URL": "http://127.0.0.1:\(lab.serverPort)", "PUSHDEPLOY_TOKEN": ""])
        #expect(refused.status != 0)
        #expect(refused.output.trimmingCharacters(in: .whitespacesAndNewlines) == "pushdeploy: 401: missing Authorization: Bearer <token>")
        // Deployment 1: a rollback with nothing to go back to, refused and recorded.
        let nothingYet = try lab.cli(["rollback", "--wait"])
        #expect(nothingYet.status != 0)
        #expect(nothingYet.output.contains("no earlier successful release"), "\(nothingYet.output)")

        // Deployment 2, the first real one: fetched with libgit2, built with Gradle, started on blue, live through nginx.
        let deploy = try lab.cli(["deploy", "--wait"])
        #expect(deploy.status == 0, "\(deploy.output)\n\(lab.serverLog)")
        #expect(deploy.output.contains("queued"))
        let history = try lab.cli(["history", "--json"])
        let records = try JSONDecoder.pushDeploy.decode([Deployment].self, from: Data(history.output.utf8))
        let one = try #require(records.first)
        #expect(one.status == .succeeded)
        #expect(one.commit == first)
        #expect(one.phases.map(\.name) == [.queued, .fetching, .building, .starting, .healthy, .switching])
        #expect(one.phases.allSatisfy { ($0.seconds ?? -1) >= 0 })
        let v1 = try #require(one.version)
        #expect(v1.range(of: #"^1\.0\.1-SNAPSHOT-\d{14}$"#, options: .regularExpression) != nil)
        #expect(lab.servedVersion() == v1)
        let release = try JSONDecoder.pushDeploy.decode(Release.self, from: Data(contentsOf: URL(fileURLWithPath: "\(lab.scratch)/state/releases/demo/\(v1)/release.json")))
        #expect(release.commit == first)

        // A one-line change goes live on green; blue keeps v1 warm.
        let second = try lab.commitChange("second version")
        let again = try lab.cli(["deploy", "--wait"])
        #expect(again.status == 0, "\(again.output)\n\(lab.serverLog)")
        let two = try await lab.waitFor(3, timeout: .seconds(10)) { $0.status.isFinished }
        let v2 = try #require(two.version)
        #expect(two.commit == second)
        #expect(v2 != v1)
        #expect(lab.servedVersion() == v2)
        let state = lab.appState()
        #expect(state.live.map(\.version) == [v2])
        #expect(state.warm.map(\.version) == [v1])
        let status = try lab.cli(["status"])
        #expect(status.output.contains("live:      \(v2)"), "\(status.output)")
        #expect(status.output.contains("warm \(v1)"), "\(status.output)")
        let candidates = try lab.cli(["rollback", "--list"])
        #expect(candidates.output.contains(v1) && candidates.output.contains("live"), "\(candidates.output)")

        // One command back: v1 is warm, so it is only an nginx flip.
        let warmPID = try #require(state.warm.first?.pid)
        let rollback = try lab.cli(["rollback", "--wait"])
        #expect(rollback.status == 0, "\(rollback.output)\n\(lab.serverLog)")
        #expect(lab.servedVersion() == v1)
        let back = try await lab.waitFor(4, timeout: .seconds(10)) { $0.status.isFinished }
        #expect(back.kind == .rollback)
        #expect(back.status == .succeeded)
        #expect(back.version == v1)
        #expect(lab.appState().live.first?.pid == warmPID)
        let logs = try lab.cli(["logs", "4"])
        #expect(logs.output.contains("already runs \(v1) and is healthy: no start needed"), "\(logs.output)")

        // A pruned or unknown target is refused with the list of what one can roll back to.
        let unknown = try lab.cli(["rollback", "--to", "9.9.9", "--wait"])
        #expect(unknown.status != 0)
        #expect(unknown.output.contains("release 9.9.9 is not stored") && unknown.output.contains(v2), "\(unknown.output)")
        #expect(lab.servedVersion() == v1)

        // A rollback never waits behind a build: it cancels the deployment still building and goes first.
        try lab.commitChange("a build nobody waits for")
        let building = try lab.deploy()
        try await lab.waitFor(building) { $0.status == .building }
        let clock = ContinuousClock()
        let started = clock.now
        let urgent = try lab.cli(["rollback", "--wait"])
        #expect(urgent.status == 0, "\(urgent.output)\n\(lab.serverLog)")
        #expect(clock.now - started < .seconds(15), "the rollback waited for the build")
        let cancelled = try await lab.waitFor(building) { $0.status.isFinished }
        #expect(cancelled.status == .cancelled, "\(cancelled)")
        #expect(lab.servedVersion() == v2)

        // A broken build fails with the compiler's last words and leaves the live release and its slots alone.
        let before = lab.appState().entries
        let file = lab.source + "/src/main/java/demo/DemoApp.java"
        try (String(contentsOfFile: file, encoding: .utf8) + "\nthis is not java\n").write(toFile: file, atomically: true, encoding: .utf8)
        try lab.git(["commit", "-q", "-am", "broken"])
        let broken = try lab.cli(["deploy", "--wait"])
        #expect(broken.status != 0)
        let failed = try #require(try lab.cli(["history", "--json", "--limit", "1"]).output
            .data(using: .utf8).map { try JSONDecoder.pushDeploy.decode([Deployment].self, from: $0) }?.first)
        #expect(failed.status == .failed)
        #expect(failed.phases.last?.name == .building)
        #expect(failed.error?.contains("DemoApp.java") == true && failed.error?.contains("error") == true, "\(failed.error ?? "")")
        #expect(lab.servedVersion() == v2)
        #expect(lab.appState().entries.map(\.instance) == before.map(\.instance))
    }

    @Test("hooks/post-receive in a bare repository queues the pushed commit; a hostile setting is refused",
          .enabled(if: ServeLab.toolsPresent, "needs gradle, java, git, curl and nginx"))
    func postReceiveHookQueuesThePushedCommit() async throws {
        let lab = try ServeLab()
        defer { lab.tearDown() }
        try await lab.startServer()
        let bare = lab.scratch + "/shop.git"
        _ = try Integration.run("/usr/bin/git", ["clone", "-q", "--bare", lab.source, bare])
        let hook = bare + "/hooks/post-receive"
        try FileManager.default.copyItem(atPath: Integration.root + "/hooks/post-receive", toPath: hook)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: hook)
        let config = { (key: String, value: String) throws in
            _ = try Integration.run("/usr/bin/git", ["-C", bare, "config", "pushdeploy.\(key)", value])
        }
        try config("url", "http://127.0.0.1:\(lab.serverPort)")
        try config("app", "demo")
        try config("tokenFile", lab.scratch + "/token")

        let commit = try lab.commitChange("pushed to the bare repository")
        let push = try Integration.run("/usr/bin/git", ["-C", lab.source, "push", bare, "main"])
        #expect(push.status == 0, "\(push.output)")
        #expect(push.output.contains("pushdeploy: deploying \(commit.prefix(12)) of refs/heads/main to demo (HTTP 202)"), "\(push.output)")
        // The record file follows the journal by a few milliseconds.
        let record = try await lab.waitFor(1, timeout: .seconds(10)) { _ in true }
        #expect(record.trigger.commit == commit)
        #expect(record.trigger.ref == "refs/heads/main")

        // Whatever the settings say never reaches a shell or the URL: a hostile app name is refused, the push still goes in.
        try config("app", "demo; touch \(lab.scratch)/pwned")
        try lab.commitChange("second push")
        let refused = try Integration.run("/usr/bin/git", ["-C", lab.source, "push", bare, "main"])
        #expect(refused.status == 0)
        #expect(refused.output.contains("is not an app name"), "\(refused.output)")
        #expect(!FileManager.default.fileExists(atPath: lab.scratch + "/pwned"))
        #expect(lab.record(2) == nil)
    }

    @Test func checkRejectsABrokenConfigWithTheKeyPath() throws {
        let scratch = NSTemporaryDirectory() + "pushdeploy-check-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try """
        apps:
          shop:
            repository: { url: https://github.com/acme/shop.git }
            slots: { blue: 8081, green: 8081 }
            watch: forever
            nginx: { include_file: /nonexistent/shop.inc }
        """.write(toFile: scratch + "/bad.yml", atomically: true, encoding: .utf8)
        let (status, output) = try Integration.run(Integration.executable, ["check", "--config", scratch + "/bad.yml"])
        #expect(status != 0)
        #expect(output.contains("apps.shop.slots: blue and green must use two different ports"))
        #expect(output.contains("apps.shop.watch: bad duration 'forever'"))
        #expect(output.contains("apps.shop.nginx.include_file: the folder /nonexistent does not exist"))
    }
}
