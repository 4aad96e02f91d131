import Foundation
import Testing
@testable import PushDeploy

private let browserPresent = ["/usr/bin/chromium", "/usr/bin/chromedriver", "/usr/bin/python3"].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }
    && FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/selenium")

/// The dashboard in a real headless Chromium against a running server with real deployments.
@Suite("Dashboard in a browser", .serialized)
struct DashboardBrowserTests {
    @Test("enter the token, see the live version, deploy and watch the log, roll back: nginx serves the previous version",
          .enabled(if: ServeLab.toolsPresent && browserPresent, "needs gradle, java, nginx, chromium, chromium-driver, python3-selenium"),
          .timeLimit(.minutes(6)))
    func deployAndRollBackFromThePage() async throws {
        let lab = try ServeLab()
        defer { lab.tearDown() }
        try await lab.startServer()
        let first = try await lab.waitFor(try lab.deploy()) { $0.status.isFinished }
        #expect(first.status == .succeeded, "\(first.error ?? "")")
        let v1 = try #require(first.version)
        try lab.commitChange("a change deployed from the dashboard")

        let artifacts = Integration.root + "/.build/test-artifacts"
        try FileManager.default.createDirectory(atPath: artifacts, withIntermediateDirectories: true)
        let screenshot = artifacts + "/dashboard.png"
        let (status, output) = try Integration.run("/usr/bin/python3", [
            Integration.root + "/Tests/IntegrationTests/Fixtures/dashboard-check.py", "http://127.0.0.1:\(lab.serverPort)/", lab.token, screenshot,
        ])
        #expect(status == 0, "\(output)")
        let json = try #require(output.split(separator: "\n").last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] },
                                "\(output)")
        #expect(json["first"] as? String == v1)
        let deployed = try #require(json["deployed"] as? String)
        #expect(deployed != v1)
        #expect((json["log_lines"] as? Int ?? 0) >= 3)
        #expect(json["after_rollback"] as? String == v1)
        #expect(lab.servedVersion() == v1, "nginx does not serve the previous version after the rollback")
        #expect(FileManager.default.fileExists(atPath: screenshot))
    }
}
