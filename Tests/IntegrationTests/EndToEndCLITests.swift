import Foundation
import Testing
@testable import PushDeploy

/// The real server and CLI: a push-like trigger fetched with libgit2 and built with Gradle, read back through the CLI.
@Suite("End to end: serve, deploy, history", .serialized)
struct EndToEndCLITests {
    static let toolsPresent = ["/usr/bin/gradle", "/usr/bin/java", "/usr/bin/git", "/usr/bin/curl"].allSatisfy {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    @Test(.enabled(if: toolsPresent, "needs gradle, java, git and curl"))
    func aManualDeployFetchesBuildsAndStopsClearlyAtRollout() async throws {
        let scratch = NSTemporaryDirectory() + "pushdeploy-e2e-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let source = scratch + "/source"
        try FileManager.default.createDirectory(atPath: scratch + "/nginx", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Integration.root + "/examples/demo-app", toPath: source)
        try? FileManager.default.removeItem(atPath: source + "/build")
        try? FileManager.default.removeItem(atPath: source + "/.gradle")
        let git = { (arguments: [String]) throws -> String in
            let (status, output) = try Integration.run("/usr/bin/git", ["-C", source, "-c", "user.name=t", "-c", "user.email=t@e"] + arguments)
            guard status == 0 else { throw ServerExited(log: "git \(arguments): \(output)") }
            return output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        _ = try git(["init", "-q", "-b", "main"])
        _ = try git(["add", "-A"])
        _ = try git(["commit", "-q", "-m", "demo app"])
        let head = try git(["rev-parse", "HEAD"])

        let token = "e2e-token-\(UUID().uuidString)"
        try token.write(toFile: scratch + "/token", atomically: true, encoding: .utf8)
        let port = Integration.freePort()
        let config = scratch + "/pushdeploy.yml"
        try """
        listen: 127.0.0.1:\(port)
        state_dir: \(scratch)/state
        token_file: token
        apps:
          demo:
            repository: { url: \(source), branch: main }
            build:
              command: [gradle, --offline, --no-daemon, -q, bootJar]
              version: "1.0.1-SNAPSHOT-{timestamp}"
              artifact: build/libs/*.jar
              timeout: 5m
            run:
              command: [java, -jar, "{jar}", "--server.port={port}"]
            slots: { blue: \(Integration.freePort()), green: \(Integration.freePort()) }
            nginx: { include_file: nginx/demo.inc }
        """.write(toFile: config, atomically: true, encoding: .utf8)

        let check = try Integration.run(Integration.executable, ["check", "--config", config])
        #expect(check.status == 0, "\(check.output)")

        let server = try RunningServer(config: config, port: port, logPath: scratch + "/server.log")
        defer { server.stop() }
        try await server.waitUntilReady()
        let cli = { (arguments: [String], token: String?) throws -> (status: Int32, output: String) in
            var environment = ["PUSHDEPLOY_URL": "http://127.0.0.1:\(port)"]
            environment["PUSHDEPLOY_TOKEN"] = token ?? ""
            return try Integration.run(Integration.executable, arguments, environment: environment)
        }

        let refused = try cli(["status"], nil)
        #expect(refused.status != 0)
        #expect(refused.output.trimmingCharacters(in: .whitespacesAndNewlines) == "pushdeploy: 401: missing Authorization: Bearer <token>")

        let deploy = try cli(["deploy", "--wait"], token)
        #expect(deploy.status != 0)
        #expect(deploy.output.contains("deployment 1 of demo queued"))
        #expect(deploy.output.contains("rollout through nginx is not available"), "\(deploy.output)")

        let history = try cli(["history", "--json"], token)
        #expect(history.status == 0)
        let deployments = try JSONDecoder.pushDeploy.decode([Deployment].self, from: Data(history.output.utf8))
        let record = try #require(deployments.first)
        #expect(record.status == .failed)
        #expect(record.commit == head)
        #expect(record.phases.map(\.name) == [.queued, .fetching, .building])
        #expect(record.phases.allSatisfy { ($0.seconds ?? -1) >= 0 })
        let version = try #require(record.version)
        #expect(version.range(of: #"^1\.0\.1-SNAPSHOT-\d{14}$"#, options: .regularExpression) != nil)

        let releaseFolder = "\(scratch)/state/releases/demo/\(version)"
        #expect(FileManager.default.fileExists(atPath: releaseFolder + "/app.jar"))
        let release = try JSONDecoder.pushDeploy.decode(Release.self, from: Data(contentsOf: URL(fileURLWithPath: releaseFolder + "/release.json")))
        #expect(release.commit == head)
        #expect(release.version == version)

        let table = try cli(["history"], token)
        #expect(table.output.contains("ID") && table.output.contains("failed") && table.output.contains(version))
        let logs = try cli(["logs", "1"], token)
        #expect(logs.output.contains("phase: building"))
        #expect(logs.output.contains("checked out"))
        let status = try cli(["status"], token)
        #expect(status.status == 0)
        #expect(status.output.contains("last:      deploy 1 failed"))
        let rollback = try cli(["rollback", "--wait"], token)
        #expect(rollback.status != 0)
        #expect(rollback.output.contains("no earlier successful release"), "\(rollback.output)")
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
