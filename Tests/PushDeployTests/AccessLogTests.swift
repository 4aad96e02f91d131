import Foundation
import Testing
@testable import PushDeploy

@Suite("nginx access log")
struct AccessLogTests {
    let scratch = ScratchDirectory()

    @Test func linesInPushdeploysFormatAreRead() throws {
        let ok = try #require(AccessLogEntry(line: "1764500000.123\t200\t127.0.0.1:8082\t200\t0.004"))
        #expect(ok.port == 8082 && !ok.isFailure && ok.seconds == 0.004)
        let retried = try #require(AccessLogEntry(line: "1764500000.2\t200\t127.0.0.1:8082, 127.0.0.1:8081\t502, 200\t0.010"))
        #expect(retried.tries.map(\.port) == [8082, 8081] && retried.port == 8081 && !retried.isFailure)
        #expect(retried.tries.map(\.isFailure) == [true, false], "the first try failed though the client got its answer")
        let refused = try #require(AccessLogEntry(line: "1764500000.3\t502\t127.0.0.1:8082\t-\t0.001"))
        #expect(refused.isFailure)
        let appError = try #require(AccessLogEntry(line: "1764500000.4\t500\t127.0.0.1:8082\t500\t0.002"))
        #expect(appError.isFailure)
        #expect(AccessLogEntry(line: "127.0.0.1 - - [30/Nov/2026] \"GET / HTTP/1.1\" 200") == nil)
        // With $upstream_response_time: each try has its own time; the blue-green fallback is an internal redirect (" : ").
        let fellBack = try #require(AccessLogEntry(line: "1764500000.5\t200\t127.0.0.1:8082 : 127.0.0.1:8081\t504 : 200\t3.004\t3.000 : 0.004"))
        #expect(fellBack.tries == [AccessLogEntry.Try(port: 8082, status: 504, seconds: 3.0), AccessLogEntry.Try(port: 8081, status: 200, seconds: 0.004)])
        let nginxItself = try #require(AccessLogEntry(line: "1764500000.6\t404\t-\t-\t0.000\t-"))
        #expect(nginxItself.tries.isEmpty && !nginxItself.isFailure)
    }

    @Test("a failed try counts against its backend even when the fallback answered, with its own latency")
    func triesCountAgainstTheirBackend() {
        var window = BackendWindow(window: .seconds(10))
        let lines = (0..<20).map { _ in "99.0\t200\t127.0.0.1:8082 : 127.0.0.1:8081\t504 : 200\t3.004\t3.000 : 0.004" }
        window.add(lines.compactMap { AccessLogEntry(line: Substring($0)) }, now: 100)
        #expect(window.figures(port: 8082) == GuardFigures(requests: 20, failures: 20, p99Seconds: 3.0))
        #expect(window.figures(port: 8081) == GuardFigures(requests: 20, failures: 0, p99Seconds: 0.004))
        #expect(window.figures(ports: [8081, 8082]).requests == 40)
    }

    @Test("a canary is judged against the stable release in the same window")
    func canaryAgainstStable() {
        let config = GuardConfig(maxErrorRatio: 0.05, minRequests: 20, maxP99: .seconds(1))
        let healthyStable = GuardFigures(requests: 200, failures: 0, p99Seconds: 0.01)
        let sickStable = GuardFigures(requests: 200, failures: 20, p99Seconds: 2)  // the database is down for everyone
        let canary = GuardFigures(requests: 25, failures: 3, p99Seconds: 1.5)      // 12 %
        #expect(canary.verdict(config, against: healthyStable)?.contains("the stable release: 0 of 200") == true)
        #expect(canary.verdict(config, against: sickStable) == nil, "12 % is within the stable release's 10 % + 5 %, and it is not slower")
        let slow = GuardFigures(requests: 25, failures: 0, p99Seconds: 1.5)
        #expect(slow.verdict(config, against: healthyStable)?.contains("p99 ceiling") == true)
        #expect(slow.verdict(config, against: sickStable) == nil)
        #expect(canary.verdict(config, against: GuardFigures(requests: 5, failures: 5, p99Seconds: 9)) != nil,
                "a stable release with too few requests is no baseline")
    }

    @Test("the follower starts at the end, reads what comes, and follows a rotated or truncated file")
    func theFollowerSurvivesRotation() throws {
        let path = scratch.path + "/access.log"
        try "1.0\t200\t127.0.0.1:1\t200\t0.1\n".write(toFile: path, atomically: false, encoding: .utf8)
        let follower = AccessLogFollower(path: path)
        #expect(follower.read().isEmpty, "what was there before is skipped")
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("2.0\t500\t127.0.0.1:2\t500\t0.2\n3.0\t200\t127.0.0.1:2\t2".utf8))
        #expect(follower.read().map(\.time) == [2.0])
        try handle.write(contentsOf: Data("00\t0.3\n".utf8))
        #expect(follower.read().map(\.time) == [3.0], "a torn line is read once it is whole")
        try handle.close()
        // logrotate's rename, then nginx reopens a new file.
        try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
        try "4.0\t200\t127.0.0.1:2\t200\t0.1\n".write(toFile: path, atomically: false, encoding: .utf8)
        #expect(follower.read().map(\.time) == [4.0])
        // copytruncate: the file starts again, shorter than what was read of it.
        try "5\t200\t127.0.0.1:2\t200\t0\n".write(toFile: path, atomically: false, encoding: .utf8)
        #expect(follower.read().map(\.time) == [5])
    }

    @Test("the window counts per port, forgets what is older, and judges only with enough requests")
    func theWindowJudges() {
        var window = BackendWindow(window: .seconds(10))
        let now = 1000.0
        let lines = (0..<30).map { index in "\(now - 1)\t\(index % 5 == 0 ? 500 : 200)\t127.0.0.1:8082\t\(index % 5 == 0 ? 500 : 200)\t0.01" }
            + ["\(now - 30)\t500\t127.0.0.1:8082\t500\t0.01", "\(now - 1)\t500\t127.0.0.1:8081\t500\t0.01"]
        window.add(lines.compactMap { AccessLogEntry(line: Substring($0)) }, now: now)
        let figures = window.figures(port: 8082)
        #expect(figures.requests == 30 && figures.failures == 6)
        #expect(figures.verdict(GuardConfig(maxErrorRatio: 0.05, minRequests: 20))?.hasPrefix("the guard: 6 of 30 requests failed (20.0 %)") == true)
        #expect(figures.verdict(GuardConfig(maxErrorRatio: 0.05, minRequests: 200)) == nil, "too few requests to judge")
        // 6 failures already put the share of the first 31 requests above 5 %, whatever the 31st answers.
        #expect(figures.verdict(GuardConfig(maxErrorRatio: 0.05, minRequests: 31))?.contains("so more than 5.0 % of the first 31 (min_requests)") == true)
        #expect(figures.verdict(GuardConfig(maxErrorRatio: 0.05, minRequests: 120)) == nil, "6 of 120 would be exactly 5 %: not settled")
        #expect(figures.verdict(GuardConfig(maxErrorRatio: 0.25, minRequests: 20)) == nil)
        #expect(figures.verdict(GuardConfig(maxErrorRatio: 0.5, minRequests: 20, maxP99: .milliseconds(5)))?.contains("p99 ceiling") == true)
    }
}
