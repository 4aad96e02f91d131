import Foundation
import Synchronization
import Testing
@testable import PushDeploy

/// The order of a switch and what each failure puts back, with nginx scripted and answers made up.
@Suite("traffic switch order")
struct TrafficSwitchOrderTests {
    private static let test = ["nginx", "-t"]
    private static let reload = ["nginx", "-s", "reload"]

    @Test("write, test, reload, confirm; the log times each step")
    func success() async throws {
        let lab = SwitchLab(old: "set $service_url http://127.0.0.1:8081;\n")
        let answers = ScriptedAnswers { _ in .answered(status: 200, body: "demo-app 2.0\n") }
        try await lab.traffic(answers: answers).route(to: [8082], app: lab.app, expectVersion: "2.0", log: lab.log)
        #expect(await lab.runner.commands.map(\.arguments) == [Self.test, Self.reload])
        #expect(lab.traffic(answers: answers).currentPorts(app: lab.app) == [8082])
        #expect(await answers.targets == [NginxProbe.Target(host: "127.0.0.1", port: 8000, path: "/")])
        #expect(lab.log.text.contains("routing shop to 8082 (was 8081)"))
        #expect(lab.log.text.contains(#/switched to 8082 in \d+ ms \(test \d+ ms, reload \d+ ms, confirmed after \d+ ms\); old workers and their connections gone after \d+ ms/#))
    }

    @Test("a canary step is confirmed by bursts of probes, one of which draws the new release's share")
    func canaryStepBursts() async throws {
        let strategy = Strategy.canary(blue: 8081, green: 8082, plan: CanaryPlan())
        let lab = SwitchLab(old: try NginxInclude.render([8081], app: "shop", strategy: strategy), strategy: strategy)
        let calls = Mutex(0)
        // Every tenth answer comes from the canary, as a 10 % split gives.
        let answers = ScriptedAnswers { _ in
            let call = calls.withLock { $0 += 1; return $0 }
            return .answered(status: 200, body: "fixed", upstream: call % 10 == 0 ? "127.0.0.1:8082" : "127.0.0.1:8081")
        }
        try await lab.traffic(answers: answers).route(to: [8081, 8082], canaryPercent: 10, app: lab.app, expectVersion: "2.0", log: lab.log)
        #expect(calls.withLock { $0 } == 10, "one burst of ten was enough")
        #expect(lab.traffic().currentPorts(app: lab.app) == [8081, 8082])
        #expect(lab.log.text.contains("routing shop to 8081 and 10 % to 8082 (was 8081)"))
    }

    @Test("a switch that only drops a port is proven by ten answers in a row from the rest, not one")
    func droppingAPortNeedsTenInARow() async throws {
        let strategy = Strategy.canary(blue: 8081, green: 8082, plan: CanaryPlan())
        let lab = SwitchLab(old: try NginxInclude.render([8081, 8082], app: "shop", strategy: strategy, canaryPercent: 50), strategy: strategy)
        let calls = Mutex(0)
        // The old configuration's workers answer from both releases for the first answers.
        let answers = ScriptedAnswers { _ in
            let call = calls.withLock { $0 += 1; return $0 }
            return .answered(status: 200, body: "fixed", upstream: call <= 6 && call % 2 == 0 ? "127.0.0.1:8082" : "127.0.0.1:8081")
        }
        try await lab.traffic(answers: answers).route(to: [8081], app: lab.app, expectVersion: "1.0", log: lab.log)
        #expect(calls.withLock { $0 } == 16, "ten in a row after the last answer from the dropped port (the 6th)")
    }

    @Test("a failing nginx -t puts the old file back, does not reload, and carries nginx's words")
    func testFails() async throws {
        let old = "set $service_url http://127.0.0.1:8081;\n"
        let lab = SwitchLab(old: old) { command in
            command.arguments == Self.test
                ? .init(status: .exited(1), output: ["nginx: [emerg] invalid port in \"127.0.0.1:8082\""]) : .init()
        }
        let error = await #expect(throws: TrafficError.self) {
            try await lab.traffic().route(to: [8082], app: lab.app, expectVersion: "2.0", log: lab.log)
        }
        #expect(error == .testFailed(command: "nginx -t", reason: "exit code 1", output: ["nginx: [emerg] invalid port in \"127.0.0.1:8082\""]))
        #expect(lab.include == old)
        #expect(await lab.runner.commands.map(\.arguments) == [Self.test])
    }

    @Test("with no file before, a failed switch removes the new one")
    func noOldFile() async throws {
        let lab = SwitchLab(old: nil) { $0.arguments == Self.test ? .init(status: .exited(1)) : .init() }
        await #expect(throws: TrafficError.self) {
            try await lab.traffic().route(to: [8082], app: lab.app, expectVersion: nil, log: lab.log)
        }
        #expect(lab.include == nil)
        #expect(lab.traffic().currentPorts(app: lab.app) == nil)
    }

    @Test("a failing reload puts the old file back and reloads again")
    func reloadFails() async throws {
        let old = "set $service_url http://127.0.0.1:8081;\n"
        let calls = Mutex(0)
        let lab = SwitchLab(old: old) { command in
            guard command.arguments == Self.reload else { return .init() }
            let first = calls.withLock { count in
                count += 1
                return count == 1
            }
            return first ? .init(status: .exited(1), output: ["nginx: [error] invalid PID number"]) : .init()
        }
        let error = await #expect(throws: TrafficError.self) {
            try await lab.traffic().route(to: [8082], app: lab.app, expectVersion: "2.0", log: lab.log)
        }
        #expect(error == .reloadFailed(command: "nginx -s reload", reason: "exit code 1", output: ["nginx: [error] invalid PID number"]))
        #expect(lab.include == old)
        #expect(await lab.runner.commands.map(\.arguments) == [Self.test, Self.reload, Self.reload])
    }

    @Test("answers that never come from the new release put the old file back and reload")
    func notConfirmed() async throws {
        let old = "set $service_url http://127.0.0.1:8081;\n"
        let lab = SwitchLab(old: old)
        let answers = ScriptedAnswers { _ in .answered(status: 200, body: "demo-app 1.0\n") }
        let error = await #expect(throws: TrafficError.self) {
            try await lab.traffic(answers: answers, confirmTimeout: .milliseconds(600))
                .route(to: [8082], app: lab.app, expectVersion: "2.0", log: lab.log)
        }
        guard case let .notConfirmed(url, expected, waited, lastAnswer) = error else {
            Issue.record("not a confirmation failure: \(String(describing: error))")
            return
        }
        #expect(url == "http://127.0.0.1:8000/")
        #expect(expected.hasPrefix("a page naming release 2.0 (nginx sent no X-Pushdeploy-Upstream header"))
        #expect(waited == .milliseconds(600))
        #expect(lastAnswer == "200 \"demo-app 1.0\"")
        #expect(await answers.targets.count >= 2)  // it polled again rather than give up on the first answer
        #expect(lab.include == old)
        #expect(await lab.runner.commands.map(\.arguments) == [Self.test, Self.reload, Self.reload])
    }

    @Test("with X-Pushdeploy-Upstream the new port proves the switch, whatever the page says")
    func theUpstreamHeaderProvesTheSwitch() async throws {
        let lab = SwitchLab(old: "set $service_url http://127.0.0.1:8081;\n")
        let calls = Mutex(0)
        // An old worker answers from 8081 twice, then the new configuration from 8082; the page never changes.
        let answers = ScriptedAnswers { _ in
            let call = calls.withLock { $0 += 1; return $0 }
            return .answered(status: 200, body: #"{"status":"UP"}"#, upstream: call <= 2 ? "127.0.0.1:8081" : "127.0.0.1:8082")
        }
        try await lab.traffic(answers: answers).route(to: [8082], app: lab.app, expectVersion: "2.0", log: lab.log)
        #expect(await answers.targets.count == 3)
        #expect(lab.include?.contains("127.0.0.1:8082") == true)
    }

    @Test("an answer from the old port, or nginx's own 502 naming the new one, proves nothing")
    func theOldPortOrA502IsNoProof() async throws {
        for outcome in [NginxProbe.Outcome.answered(status: 200, body: "demo-app 2.0", upstream: "127.0.0.1:8081"),
                        .answered(status: 502, body: "bad gateway", upstream: "127.0.0.1:8082")] {
            let old = "set $service_url http://127.0.0.1:8081;\n"
            let lab = SwitchLab(old: old)
            let error = await #expect(throws: TrafficError.self) {
                try await lab.traffic(answers: ScriptedAnswers { _ in outcome }, confirmTimeout: .milliseconds(300))
                    .route(to: [8082], app: lab.app, expectVersion: "2.0", log: lab.log)
            }
            guard case let .notConfirmed(_, expected, _, _) = error else {
                Issue.record("not a confirmation failure: \(String(describing: error))")
                continue
            }
            #expect(expected == "an answer from port 8082 in X-Pushdeploy-Upstream")
            #expect(lab.include == old)
        }
    }

    @Test(arguments: [("127.0.0.1:8082", 8082), ("127.0.0.1:8081, 127.0.0.1:8083", 8083), ("127.0.0.1:8081 : 127.0.0.1:8084", 8084),
                      ("[::1]:8085", 8085), ("unix:/tmp/x", nil), ("", nil)])
    func theAnsweringPortIsTheLastTried(upstream: String, port: Int?) {
        #expect(NginxTrafficSwitch.answeringPort(upstream) == port)
    }

    @Test("when putting the old file back fails too, the error says so")
    func restoreFails() async throws {
        let lab = SwitchLab(old: "set $service_url http://127.0.0.1:8081;\n") { command in
            command.arguments == Self.reload ? .init(status: .exited(1), output: ["nginx is not running"]) : .init()
        }
        let error = await #expect(throws: TrafficError.self) {
            try await lab.traffic().route(to: [8082], app: lab.app, expectVersion: "2.0", log: lab.log)
        }
        guard case let .restoreFailed(after, _) = error, case .reloadFailed = after else {
            Issue.record("expected restoreFailed(after: reloadFailed), got \(String(describing: error))")
            return
        }
        #expect("\(error!)".contains("check nginx now"))
    }

    @Test("without verify_url each backend is checked directly, and the log says that is weaker")
    func noVerifyURL() async throws {
        let lab = SwitchLab(old: nil, verifyURL: nil, strategy: .rolling(instances: [8081, 8082]))
        let answers = ScriptedAnswers { _ in .answered(status: 200, body: "{\"status\":\"UP\"}") }
        try await lab.traffic(answers: answers).route(to: [8081, 8082], app: lab.app, expectVersion: nil, log: lab.log)
        #expect(await answers.targets == [NginxProbe.Target(host: "127.0.0.1", port: 8081, path: "/actuator/health"),
                                          NginxProbe.Target(host: "127.0.0.1", port: 8082, path: "/actuator/health")])
        #expect(lab.log.text.contains("no verify_url"))
        #expect(lab.include?.contains("upstream shop_backend {") == true)
    }

    @Test("an app without nginx, or bad ports, fails before the file is touched")
    func refusedEarly() async throws {
        let lab = SwitchLab(old: "keep me\n")
        await #expect(throws: TrafficError.invalidPorts(app: "shop", ports: [0], reason: "0 is not a TCP port")) {
            try await lab.traffic().route(to: [0], app: lab.app, expectVersion: nil, log: lab.log)
        }
        lab.app.nginx = nil
        await #expect(throws: TrafficError.notConfigured(app: "shop")) {
            try await lab.traffic().route(to: [8082], app: lab.app, expectVersion: nil, log: lab.log)
        }
        #expect(lab.include == "keep me\n")
        #expect(await lab.runner.commands.isEmpty)
    }

    @Test("the memory switch records routes, fails on request and keeps traffic where it was")
    func memorySwitch() async throws {
        let lab = SwitchLab(old: nil)
        let traffic = MemoryTrafficSwitch(ports: ["shop": [8081]])
        traffic.failNextRoute(with: .notConfirmed(url: "http://x/", expected: "release 2.0", waited: .seconds(5), lastAnswer: "502"))
        await #expect(throws: TrafficError.self) {
            try await traffic.route(to: [8082], app: lab.app, expectVersion: "2.0", log: lab.log)
        }
        #expect(traffic.currentPorts(app: lab.app) == [8081])
        try await traffic.route(to: [8082], app: lab.app, expectVersion: "2.0", log: lab.log)
        #expect(traffic.currentPorts(app: lab.app) == [8082])
        #expect(traffic.routes == [.init(app: "shop", ports: [8082], expectVersion: "2.0", succeeded: false),
                                   .init(app: "shop", ports: [8082], expectVersion: "2.0", succeeded: true)])
    }
}

/// An include file in a scratch folder (removed afterwards), a scripted nginx and an app that points at both.
private final class SwitchLab {
    let folder: String
    let runner: MemoryCommandRunner
    let log = MemoryDeploymentLog()
    var app: AppConfig

    init(old: String?, verifyURL: String? = "http://127.0.0.1:8000/", strategy: Strategy = .blueGreen(blue: 8081, green: 8082),
         respond: @escaping @Sendable (Command) -> MemoryCommandRunner.Response = { _ in .init() }) {
        folder = NSTemporaryDirectory() + "pushdeploy-traffic-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        if let old { try! old.write(toFile: folder + "/shop.inc", atomically: true, encoding: .utf8) }
        runner = MemoryCommandRunner(respond: respond)
        app = AppConfig(name: "shop", repository: RepositoryConfig(url: "/unused"), webhooks: WebhookSecrets(), build: BuildConfig(),
                        run: RunConfig(), strategy: strategy, health: HealthConfig(), watch: .zero, keepPreviousWarm: true,
                        nginx: NginxConfig(includeFile: folder + "/shop.inc", verifyURL: verifyURL), keepReleases: 5,
                        hooks: LifecycleHooks())
    }

    deinit { try? FileManager.default.removeItem(atPath: folder) }

    /// The include file's text now, nil when there is none.
    var include: String? { try? String(contentsOfFile: folder + "/shop.inc", encoding: .utf8) }

    func traffic(answers: ScriptedAnswers = ScriptedAnswers { _ in .answered(status: 200, body: "demo-app 2.0") },
                 confirmTimeout: Duration = .seconds(1)) -> NginxTrafficSwitch {
        NginxTrafficSwitch(runner: runner, confirmTimeout: confirmTimeout, pollInterval: .milliseconds(10)) { target, _ in
            await answers.answer(target)
        }
    }
}

/// Made-up HTTP answers, and every target asked.
private actor ScriptedAnswers {
    private let respond: @Sendable (NginxProbe.Target) -> NginxProbe.Outcome
    private(set) var targets: [NginxProbe.Target] = []

    init(_ respond: @escaping @Sendable (NginxProbe.Target) -> NginxProbe.Outcome) { self.respond = respond }

    func answer(_ target: NginxProbe.Target) -> NginxProbe.Outcome {
        targets.append(target)
        return respond(target)
    }
}
