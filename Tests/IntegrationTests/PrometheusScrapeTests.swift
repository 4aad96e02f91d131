import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import PushDeploy

private let prometheusPresent = ["/usr/bin/prometheus", "/usr/bin/promtool"].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }

/// `/metrics` read by the real tools: `promtool check metrics`, and a Prometheus server scraping it.
@Suite("Prometheus", .serialized)
struct PrometheusScrapeTests {
    @Test(.enabled(if: prometheusPresent, "needs Debian's prometheus"), .timeLimit(.minutes(2)))
    func aRealPrometheusScrapesTheDeploymentCounter() async throws {
        let folder = NSTemporaryDirectory() + "pushdeploy-prometheus-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let server = try await RunningServer.minimal(in: folder, token: "metrics-token")
        defer { server.stop() }
        let port = server.port
        // One deployment, which fails at once (the repository is missing): a counter with a value.
        _ = try Integration.run("/usr/bin/curl", ["-sf", "-X", "POST", "-H", "Authorization: Bearer metrics-token", "http://127.0.0.1:\(port)/deploy"])
        try await Task.sleep(for: .seconds(1))

        let (_, metrics) = try Integration.run("/usr/bin/curl", ["-sf", "http://127.0.0.1:\(port)/metrics"])
        #expect(metrics.contains(#"pushdeploy_deployments_total{app="shop",kind="deploy",status="failed"} 1"#), "\(metrics)")
        try metrics.write(toFile: folder + "/metrics.txt", atomically: true, encoding: .utf8)
        let (checked, lint) = try Integration.run("/bin/sh", ["-c", "/usr/bin/promtool check metrics < \(folder)/metrics.txt"])
        #expect(checked == 0, "promtool: \(lint)")

        let prometheusPort = Integration.freePort()
        try """
        global: { scrape_interval: 1s, evaluation_interval: 1s }
        scrape_configs:
          - job_name: pushdeploy
            static_configs: [ { targets: ["127.0.0.1:\(port)"] } ]
        """.write(toFile: folder + "/prometheus.yml", atomically: true, encoding: .utf8)
        let prometheus = try Integration.spawn("/usr/bin/prometheus", [
            "--config.file=\(folder)/prometheus.yml", "--storage.tsdb.path=\(folder)/tsdb", "--web.listen-address=127.0.0.1:\(prometheusPort)",
        ], outputPath: folder + "/prometheus.log")
        defer {
            kill(prometheus, SIGTERM)
            var status: Int32 = 0
            for _ in 0..<100 where waitpid(prometheus, &status, WNOHANG) == 0 { usleep(50_000) }
            kill(prometheus, SIGKILL)
            waitpid(prometheus, &status, WNOHANG)
        }
        let query = "pushdeploy_deployments_total%7Bapp%3D%22shop%22%2Cstatus%3D%22failed%22%7D"
        var value: String?
        let started = ContinuousClock.now
        while value == nil, ContinuousClock.now - started < .seconds(60) {
            try await Task.sleep(for: .seconds(1))
            guard let (status, answer) = try? Integration.run("/usr/bin/curl", ["-sf", "http://127.0.0.1:\(prometheusPort)/api/v1/query?query=\(query)"]),
                  status == 0, let json = try? JSONSerialization.jsonObject(with: Data(answer.utf8)) as? [String: Any],
                  let data = json["data"] as? [String: Any], let result = (data["result"] as? [[String: Any]])?.first,
                  let sample = result["value"] as? [Any], sample.count == 2 else { continue }
            value = sample[1] as? String
        }
        #expect(value == "1", "Prometheus did not report the counter: \((try? String(contentsOfFile: folder + "/prometheus.log", encoding: .utf8))?.suffix(800) ?? "")")
    }
}
