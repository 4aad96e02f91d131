import Foundation
import Testing
@testable import PushDeploy

@Suite("Config")
struct ConfigLoaderTests {
    let scratch = ScratchDirectory()

    private func yaml(_ apps: String, top: String = "") -> String {
        """
        listen: 127.0.0.1:9100
        state_dir: state
        token_file: token
        \(top)
        apps:
        \(apps)
        """
    }

    private var shop: String {
        """
          shop:
            repository: { url: https://github.com/acme/shop.git, branch: main, token_env: SHOP_TOKEN }
            webhooks:
              github: { secret_file: github_secret }
              gitlab: { token_env: GITLAB_TOKEN }
            build:
              command: [./gradlew, bootJar]
              version: "1.0.1-SNAPSHOT-{timestamp}"
              artifact: build/libs/*.jar
              timeout: 15m
            run:
              command: [java, -jar, "{jar}", "--server.port={port}", "--spring.profiles.active={slot}"]
              env: { JAVA_OPTS: -Xmx512m }
              stop_timeout: 30s
            strategy: blue-green
            slots: { blue: 8081, green: 8082 }
            health: { path: /actuator/health, expect_status: 200, expect_body: UP, interval: 250ms, startup_timeout: 120s }
            watch: 30s
            nginx:
              include_file: nginx/shop.inc
              verify_url: http://127.0.0.1/
            keep_releases: 5
        """
    }

    private func load(_ text: String, environment: [String: String] = ["GITLAB_TOKEN": "gl-token", "SHOP_TOKEN": "ghp_x"]) throws(ConfigError) -> Config {
        scratch.write("token", "api-token\n")
        scratch.write("github_secret", "hook-secret\n")
        scratch.write("nginx/.keep", "")
        let file = scratch.write("pushdeploy.yml", text)
        return try ConfigLoader(environment: environment).load(path: file)
    }

    private func problems(_ text: String, environment: [String: String] = ["GITLAB_TOKEN": "gl-token", "SHOP_TOKEN": "ghp_x"]) -> [String] {
        do {
            _ = try load(text, environment: environment)
            return []
        } catch {
            return error.problems.map(\.description)
        }
    }

    @Test func readsTheDesignExample() throws {
        let config = try load(yaml(shop))
        #expect(config.listen == ListenAddress(host: "127.0.0.1", port: 9100))
        #expect(config.stateDirectory == scratch.path + "/state")
        #expect(config.token == Secret("api-token"))
        #expect(config.bodyLimit == 5 * 1024 * 1024)
        let app = try #require(config.app(named: "shop"))
        #expect(app.repository.token == Secret("ghp_x"))
        #expect(app.webhooks.github == Secret("hook-secret"))
        #expect(app.webhooks.gitlab == Secret("gl-token"))
        #expect(app.build.command == ["./gradlew", "bootJar"])
        #expect(app.build.timeout == .seconds(900))
        #expect(app.strategy == .blueGreen(blue: 8081, green: 8082))
        #expect(app.health.interval == .milliseconds(250))
        #expect(app.health.startupTimeout == .seconds(120))
        #expect(app.nginx?.includeFile == scratch.path + "/nginx/shop.inc")
        #expect(app.run.env["JAVA_OPTS"] == "-Xmx512m")
    }

    @Test func severalAppsKeepTheirOrder() throws {
        let second = shop.replacingOccurrences(of: "  shop:", with: "  admin:")
            .replacingOccurrences(of: "8081", with: "8091").replacingOccurrences(of: "8082", with: "8092")
        let config = try load(yaml(shop + "\n" + second))
        #expect(config.apps.map(\.name) == ["shop", "admin"])
    }

    @Test func anUnknownKeyIsNamedWithItsPathAndASuggestion() {
        let found = problems(yaml(shop.replacingOccurrences(of: "keep_releases: 5", with: "keep_release: 5")))
        #expect(found.count == 1)
        #expect(found[0].contains("apps.shop.keep_release: unknown key 'keep_release' (did you mean 'keep_releases'?)"))
    }

    @Test func aBadDurationNamesTheKey() {
        let found = problems(yaml(shop.replacingOccurrences(of: "timeout: 15m", with: "timeout: 15 minutes")))
        #expect(found.contains { $0.contains("apps.shop.build.timeout: bad duration '15 minutes'") })
    }

    @Test func aMissingSecretFileIsReported() {
        let found = problems(yaml(shop.replacingOccurrences(of: "secret_file: github_secret", with: "secret_file: nowhere")))
        #expect(found.contains { $0.contains("apps.shop.webhooks.github.secret_file: secret file \(scratch.path)/nowhere is missing or unreadable") })
    }

    @Test func anUnsetSecretVariableIsReportedWithoutAValue() {
        let found = problems(yaml(shop), environment: [:])
        #expect(found.contains { $0.contains("apps.shop.webhooks.gitlab.token_env: environment variable GITLAB_TOKEN is not set") })
    }

    @Test func twoAppsOnOnePortAreRefused() {
        let second = shop.replacingOccurrences(of: "  shop:", with: "  admin:").replacingOccurrences(of: "8081", with: "8091")
        let found = problems(yaml(shop + "\n" + second))
        #expect(found.contains { $0.contains("apps.admin: port 8082 is also used by app shop") })
    }

    @Test func everyProblemIsReportedAtOnce() {
        let broken = shop
            .replacingOccurrences(of: "strategy: blue-green", with: "strategy: red-black")
            .replacingOccurrences(of: "expect_status: 200", with: "expect_status: 999")
            .replacingOccurrences(of: "interval: 250ms", with: "interval: soon")
        let found = problems(yaml(broken))
        #expect(found.count >= 3)
        #expect(found.contains { $0.contains("apps.shop.strategy: 'red-black' is not a strategy") })
        #expect(found.contains { $0.contains("apps.shop.health.expect_status: 999 is out of range") })
        #expect(found.contains { $0.contains("apps.shop.health.interval: bad duration 'soon'") })
        #expect(found.allSatisfy { $0.hasPrefix("line ") })
    }

    @Test func secretsNeverAppearInProblemsOrDescriptions() throws {
        let config = try load(yaml(shop))
        let app = try #require(config.apps.first)
        #expect("\(app.webhooks)".contains("hook-secret") == false)
        #expect("\(config)".contains("api-token") == false)
        #expect(String(describing: Secret("hunter2")) == "<secret>")
        let found = problems(yaml(shop.replacingOccurrences(of: "token_env: GITLAB_TOKEN", with: "token_env: GITLAB_TOKEN, token_file: github_secret")))
        #expect(found.allSatisfy { !$0.contains("hook-secret") && !$0.contains("gl-token") })
    }

    @Test func aPortIsRequiredInTheRunCommand() {
        let found = problems(yaml(shop.replacingOccurrences(of: "\"--server.port={port}\", ", with: "")))
        #expect(found.contains { $0.contains("apps.shop.run.command: must pass {port}") })
    }

    @Test func rollingNeedsInstances() throws {
        let rolling = shop.replacingOccurrences(of: "strategy: blue-green", with: "strategy: rolling")
            .replacingOccurrences(of: "slots: { blue: 8081, green: 8082 }", with: "instances: [8081, 8082, 8083]")
        #expect(try load(yaml(rolling)).apps[0].strategy == .rolling(instances: [8081, 8082, 8083]))
        let missing = shop.replacingOccurrences(of: "strategy: blue-green", with: "strategy: rolling")
            .replacingOccurrences(of: "slots: { blue: 8081, green: 8082 }", with: "")
        #expect(problems(yaml(missing)).contains { $0.contains("apps.shop.instances: rolling needs a list of ports") })
    }

    @Test("canary takes blue-green's slots and steps that rise to 100")
    func canarySteps() throws {
        let canary = shop.replacingOccurrences(of: "strategy: blue-green", with: "strategy: canary")
        #expect(try load(yaml(canary)).apps[0].strategy == .canary(blue: 8081, green: 8082, plan: CanaryPlan()))
        #expect(try load(yaml(canary)).warnings.contains { $0.contains("canary without guard: watches each step by the health check only") })
        let planned = canary + "\n    canary: { steps: [5, 25%], step_watch: 1m }"
        #expect(try load(yaml(planned)).apps[0].strategy == .canary(blue: 8081, green: 8082, plan: CanaryPlan(steps: [5, 25, 100], stepWatch: .seconds(60))))
        #expect(problems(yaml(canary + "\n    canary: { steps: [50, 10, 100] }")).contains { $0.contains("steps must rise: 10 comes after 50") })
        #expect(problems(yaml(canary + "\n    canary: { steps: [0, 100] }")).contains { $0.contains("'0' is not a percentage") })
        #expect(problems(yaml(canary + "\n    canary: { steps: [10], every: 1s }")).contains { $0.contains("apps.shop.canary.every") })
        #expect(problems(yaml(shop + "\n    canary: { steps: [10] }")).contains { $0.contains("apps.shop.canary: only for strategy: canary") })
    }

    @Test func notYAMLAtAll() {
        let found = problems("apps: [unclosed")
        #expect(found.count == 1)
        #expect(found[0].contains("not valid YAML"))
    }

    @Test func bodyLimitTakesSizes() throws {
        #expect(try load(yaml(shop, top: "body_limit: 64KiB")).bodyLimit == 65536)
        #expect(problems(yaml(shop, top: "body_limit: lots")).contains { $0.contains("body_limit: bad size 'lots'") })
    }

    @Test func maxConnectionsIs512UnlessSet() throws {
        #expect(try load(yaml(shop)).maxConnections == 512)
        #expect(try load(yaml(shop, top: "max_connections: 64")).maxConnections == 64)
        #expect(problems(yaml(shop, top: "max_connections: 0")).contains { $0.contains("max_connections") })
        #expect(problems(yaml(shop, top: "max_connections: many")).contains { $0.contains("max_connections: expected a whole number") })
    }

    @Test func durationsParse() {
        #expect(DurationParser.parse("250ms") == .milliseconds(250))
        #expect(DurationParser.parse("1m30s") == .seconds(90))
        #expect(DurationParser.parse("2h") == .seconds(7200))
        #expect(DurationParser.parse("15") == nil)
        #expect(DurationParser.parse("-1s") == nil)
        #expect(DurationParser.parse("") == nil)
    }

    @Test func historyRetentionAndLogCapAreRead() throws {
        let defaults = try load(yaml(shop)).apps[0]
        #expect(defaults.keepHistory == 1000)
        #expect(defaults.logMaxBytes == 10 << 20)
        let set = try load(yaml(shop + "\n    keep_history: 50\n    deploy_log_max_size: 512KiB")).apps[0]
        #expect(set.keepHistory == 50)
        #expect(set.logMaxBytes == 512 << 10)
        let bad = problems(yaml(shop + "\n    keep_history: 0\n    deploy_log_max_size: lots"))
        #expect(bad.contains { $0.contains("keep_history") && $0.contains("out of range") }, "\(bad)")
        #expect(bad.contains { $0.contains("deploy_log_max_size") && $0.contains("bad size") }, "\(bad)")
    }

    @Test(arguments: [("512", 512), ("64KiB", 64 << 10), ("10MiB", 10 << 20), ("1 GiB", 1 << 30), ("2m", 2 << 20)])
    func sizesAreParsed(text: String, bytes: Int) {
        #expect(YAMLReader.parseSize(text) == bytes)
    }

    @Test(arguments: ["", "MiB", "-1MiB", "1.5MiB", "10 parsecs", "99999999999999999999GiB"])
    func badSizesAreRefused(text: String) {
        #expect(YAMLReader.parseSize(text) == nil)
    }

    @Test func rollingWithOneInstanceIsRefusedWithTheReason() {
        let one = shop.replacingOccurrences(of: "strategy: blue-green", with: "strategy: rolling")
            .replacingOccurrences(of: "slots: { blue: 8081, green: 8082 }", with: "instances: [8081]")
        let found = problems(yaml(one))
        #expect(found.contains { $0.contains("instances") && $0.contains("at least two") }, "\(found)")
    }

    @Test func commitStatusAndNotificationsAreRead() throws {
        scratch.write("gh_status_token", "ghs_status\n")
        scratch.write("slack_url", "https://hooks.slack.com/services/T0/B0/secret\n")
        let text = yaml(shop + """

            commit_status: { provider: github, token_file: gh_status_token }
            notify:
              - { kind: slack, url_file: slack_url, events: [failed, auto_rollback] }
              - { kind: json, url: "https://ops.example.com/hook" }
        """, top: "public_url: https://deploy.example.com")
        let config = try load(text)
        let app = config.apps[0]
        #expect(config.publicURL == "https://deploy.example.com")
        #expect(app.commitStatus?.provider == .github)
        #expect(app.commitStatus?.apiURL == "https://api.github.com")
        #expect(app.commitStatus?.repository == "acme/shop")
        #expect(app.commitStatus?.token.text == "ghs_status")
        #expect(app.notify.count == 2)
        #expect(app.notify[0].events == [.failed, .autoRollback])
        #expect(app.notify[0].url.text.hasSuffix("/secret"))
        #expect(app.notify[1].events == Set(NotifyEvent.allCases))
        let bad = problems(yaml(shop + """

            commit_status: { provider: bitbucket, token_file: gh_status_token }
            notify:
              - { kind: teams, url: "https://x" }
              - { kind: json, url: "ftp://x", events: [deployed] }
        """))
        #expect(bad.contains { $0.contains("commit_status.provider") && $0.contains("bitbucket") }, "\(bad)")
        #expect(bad.contains { $0.contains("notify[0].kind") }, "\(bad)")
        #expect(bad.contains { $0.contains("notify[1]") && $0.contains("not http") }, "\(bad)")
    }

    @Test func theGuardAndTheAccessLogAreRead() throws {
        let text = yaml(shop.replacingOccurrences(of: "verify_url: http://127.0.0.1/", with: "verify_url: http://127.0.0.1/\n      access_log: nginx/access.log")
                        + "\n    guard: { max_error_ratio: 0.1, min_requests: 50, window: 20s, max_p99: 2s }")
        let app = try load(text).apps[0]
        #expect(app.nginx?.accessLog?.hasSuffix("/nginx/access.log") == true)
        #expect(app.guardConfig == GuardConfig(maxErrorRatio: 0.1, minRequests: 50, window: .seconds(20), maxP99: .seconds(2)))
        let bad = problems(yaml(shop + "\n    guard: { max_error_ratio: 5 }"))
        #expect(bad.contains { $0.contains("guard.max_error_ratio") }, "\(bad)")
    }
}
