import _CryptoExtras
import Foundation
import Yams

/// Reads `pushdeploy.yml`, resolves its secrets and paths, and reports every mistake with its key path.
public struct ConfigLoader: Sendable {
    /// Where `*_env` secrets are read from.
    public var environment: [String: String]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    /// Loads and validates the config file at `path`.
    public func load(path: String) throws(ConfigError) -> Config {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: path, problems: [ConfigProblem(path: "", message: "cannot read \(path)")])
        }
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        do {
            return try parse(String(decoding: data, as: UTF8.self), baseDirectory: (absolute as NSString).deletingLastPathComponent)
        } catch {
            throw ConfigError(file: path, problems: error.problems)
        }
    }

    /// Parses and validates config text; relative paths resolve against `baseDirectory`.
    public func parse(_ text: String, baseDirectory: String) throws(ConfigError) -> Config {
        let root: Node
        do {
            // The basic resolver tags every scalar a string: the reader converts values itself, naming the key
            // of a bad one, and Yams's default resolver compiles ICU regular expressions (3 MB of the server's
            // resident memory) only to guess types that are checked again here.
            guard let node = try Yams.compose(yaml: text, .basic) else {
                throw ConfigError(problems: [ConfigProblem(path: "", message: "the file is empty")])
            }
            root = node
        } catch let error as ConfigError {
            throw error
        } catch {
            throw ConfigError(problems: [ConfigProblem(path: "", message: "not valid YAML: \(error)")])
        }
        let reader = YAMLReader()
        let parser = Parser(reader: reader, environment: environment, base: baseDirectory)
        let config = parser.config(root)
        if var config, reader.problems.isEmpty {
            config.warnings = reader.warnings
            return config
        }
        throw ConfigError(problems: reader.problems.isEmpty
            ? [ConfigProblem(path: "", message: "the config is incomplete")] : reader.problems)
    }
}

/// The walk over one config file.
private struct Parser {
    let reader: YAMLReader
    let environment: [String: String]
    let base: String

    func config(_ root: Node) -> Config? {
        let top = reader.mapping(root, "", allowed: ["listen", "state_dir", "token_file", "token_env", "body_limit", "max_connections", "apps",
                                                  "public_url"])
        guard let top else { return nil }
        let listen = reader.string(top, "listen", "").flatMap { listenAddress($0, top["listen"]) }
            ?? ListenAddress(host: "127.0.0.1", port: 9000)
        let stateDirectory = reader.string(top, "state_dir", "").map(resolve) ?? "/var/lib/pushdeploy"
        let token = secret(top, fileKey: "token_file", envKey: "token_env", path: "")
        let bodyLimit = reader.size(top, "body_limit", "", range: 1...(1 << 40)) ?? 5 * 1024 * 1024
        var apps: [AppConfig] = []
        if top["apps"] == nil {
            reader.problem("apps", nil, "missing: name at least one app")
        }
        for (name, keyNode, node) in reader.orderedMapping(top["apps"], "apps") {
            let path = "apps.\(name)"
            if name.isEmpty || name.count > 64 || !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) {
                reader.problem(path, keyNode, "an app name may hold only letters, digits, '-' and '_' (it names folders)")
                continue
            }
            if let app = self.app(name, node, path) { apps.append(app) }
        }
        if top["apps"] != nil, apps.isEmpty, reader.problems.isEmpty {
            reader.problem("apps", top["apps"], "name at least one app")
        }
        checkPorts(apps, listen: listen, top: top)
        var config = Config(listen: listen, stateDirectory: stateDirectory, token: token, bodyLimit: bodyLimit,
                            apps: apps, baseDirectory: base)
        if let cap = reader.int(top, "max_connections", "", range: 1...1_000_000) { config.maxConnections = cap }
        if let url = reader.string(top, "public_url", "") {
            if let scheme = URLComponents(string: url)?.scheme?.lowercased(), scheme == "http" || scheme == "https" {
                config.publicURL = url
            } else {
                reader.problem("public_url", top["public_url"], "'\(url)' is not an http:// or https:// URL")
            }
        }
        return config
    }

    private func app(_ name: String, _ node: Node, _ path: String) -> AppConfig? {
        let map = reader.mapping(node, path, allowed: [
            "repository", "webhooks", "build", "run", "strategy", "slots", "instances", "health", "watch",
            "keep_previous_warm", "nginx", "keep_releases", "hooks", "keep_history", "deploy_log_max_size", "commit_status", "notify",
            "guard", "canary",
        ])
        guard let map else { return nil }
        if map["repository"] == nil { reader.problem("\(path).repository", node, "missing (required)") }
        let repository = map["repository"].flatMap { self.repository($0, "\(path).repository") }
        let webhooks = map["webhooks"].map { self.webhooks($0, "\(path).webhooks") } ?? WebhookSecrets()
        let build = map["build"].map { self.build($0, "\(path).build") } ?? BuildConfig()
        let run = map["run"].map { self.run($0, "\(path).run") } ?? RunConfig()
        let strategy = self.strategy(map, path)
        let health = map["health"].map { self.health($0, "\(path).health") } ?? HealthConfig()
        let watch = reader.duration(map, "watch", path, positive: false) ?? .seconds(30)
        let nginx = map["nginx"].flatMap { self.nginx($0, "\(path).nginx") }
        if map["nginx"] == nil {
            reader.problem("\(path).nginx", node, "missing: pushdeploy switches traffic through an nginx include file (nginx.include_file)")
        }
        let keepReleases = reader.int(map, "keep_releases", path, range: 1...1000) ?? 5
        let hooks = map["hooks"].map { self.hooks($0, "\(path).hooks") } ?? LifecycleHooks()
        let keepHistory = reader.int(map, "keep_history", path, range: 10...1_000_000) ?? AppHistorySettings.defaultKeepHistory
        let logMaxBytes = reader.size(map, "deploy_log_max_size", path, range: 64 << 10 ... 1 << 30) ?? AppHistorySettings.defaultLogMaxBytes
        let commitStatus = map["commit_status"].flatMap { self.commitStatus($0, "\(path).commit_status", repository: repository) }
        let notify = map["notify"].map { self.notify($0, "\(path).notify") } ?? []
        let guardConfig = map["guard"].flatMap { self.guardConfig($0, "\(path).guard") }
        guard let repository, let strategy else { return nil }
        if strategy.canaryPlan != nil, guardConfig == nil || nginx?.accessLog == nil {
            reader.warnings.append("\(path).strategy: canary without \(guardConfig == nil ? "guard:" : "nginx.access_log") watches each step by the "
                                   + "health check only: nothing compares the new release's answers with the stable release's")
        }
        return AppConfig(name: name, repository: repository, webhooks: webhooks, build: build, run: run,
                         strategy: strategy, health: health, watch: watch,
                         keepPreviousWarm: reader.bool(map, "keep_previous_warm", path) ?? true,
                         nginx: nginx, keepReleases: keepReleases, hooks: hooks,
                         keepHistory: keepHistory, logMaxBytes: logMaxBytes, commitStatus: commitStatus, notify: notify,
                         guardConfig: guardConfig)
    }

    private func repository(_ node: Node, _ path: String) -> RepositoryConfig? {
        let map = reader.mapping(node, path, allowed: [
            "url", "branch", "ssh_key", "known_hosts", "insecure_ignore_host_key", "username", "token_file", "token_env",
            "timeout",
        ])
        guard let map, let url = reader.string(map, "url", path, required: true) else { return nil }
        let branch = reader.string(map, "branch", path) ?? "main"
        if branch.isEmpty || branch.hasPrefix("refs/") || branch.contains("..") || branch.contains(" ") {
            reader.problem("\(path).branch", map["branch"], "'\(branch)' is not a branch name (write main, not refs/heads/main)")
        }
        let sshKey = existingFile(map, "ssh_key", path)
        let knownHosts = existingFile(map, "known_hosts", path)
        let insecure = reader.bool(map, "insecure_ignore_host_key", path) ?? false
        if Self.isSSH(url), knownHosts == nil, !insecure, map["known_hosts"] == nil {
            reader.problem("\(path).known_hosts", map["url"],
                           "an ssh url needs a known_hosts file to check the host key (or insecure_ignore_host_key: true)")
        }
        let token = secret(map, fileKey: "token_file", envKey: "token_env", path: path)
        var repository = RepositoryConfig(url: Self.isRemote(url) ? url : resolve(url), branch: branch, sshKey: sshKey,
                                          knownHosts: knownHosts, insecureIgnoreHostKey: insecure,
                                          username: reader.string(map, "username", path), token: token)
        if let timeout = reader.duration(map, "timeout", path) { repository.timeout = timeout }
        return repository
    }

    private func webhooks(_ node: Node, _ path: String) -> WebhookSecrets {
        let map = reader.mapping(node, path, allowed: ["github", "gitea", "gitlab", "travis"])
        var secrets = WebhookSecrets()
        for sender in ["github", "gitea"] {
            let senderPath = "\(path).\(sender)"
            guard let section = reader.mapping(map?[sender], senderPath, allowed: ["secret_file", "secret_env"]) else { continue }
            let secret = self.secret(section, fileKey: "secret_file", envKey: "secret_env", path: senderPath)
            if secret == nil, section["secret_file"] == nil, section["secret_env"] == nil {
                reader.problem(senderPath, map?[sender], "needs secret_file or secret_env: pushdeploy refuses unsigned webhooks")
            }
            if let secret {
                if let existing = secrets.github, existing != secret {
                    reader.problem(senderPath, map?[sender], "github and gitea share /hooks/github and must use the same secret")
                }
                secrets.github = secret
            }
        }
        if let section = reader.mapping(map?["gitlab"], "\(path).gitlab", allowed: ["token_file", "token_env"]) {
            secrets.gitlab = secret(section, fileKey: "token_file", envKey: "token_env", path: "\(path).gitlab")
            if section["token_file"] == nil, section["token_env"] == nil {
                reader.problem("\(path).gitlab", map?["gitlab"], "needs token_file or token_env")
            }
        }
        if let section = reader.mapping(map?["travis"], "\(path).travis", allowed: ["public_key_file"]) {
            let keyPath = "\(path).travis.public_key_file"
            if let file = reader.string(section, "public_key_file", "\(path).travis", required: true) {
                let resolved = resolve(file)
                if let data = FileManager.default.contents(atPath: resolved) {
                    let pem = String(decoding: data, as: UTF8.self)
                    if (try? _RSA.Signing.PublicKey(pemRepresentation: pem)) == nil {
                        reader.problem(keyPath, section["public_key_file"], "\(resolved) is not an RSA public key in PEM form")
                    } else {
                        secrets.travisPublicKeyPEM = pem
                    }
                } else {
                    reader.problem(keyPath, section["public_key_file"], "cannot read \(resolved)")
                }
            }
        }
        return secrets
    }

    private func build(_ node: Node, _ path: String) -> BuildConfig {
        var build = BuildConfig()
        let map = reader.mapping(node, path, allowed: ["command", "version", "artifact", "timeout", "env", "cancel_superseded"])
        if let command = reader.argumentList(map, "command", path) { build.command = command }
        if let version = reader.string(map, "version", path, required: false) {
            let unknown = Self.placeholders(in: version).subtracting(["timestamp", "commit", "short_commit"])
            if !unknown.isEmpty {
                reader.problem("\(path).version", map?["version"],
                               "unknown placeholder {\(unknown.sorted().joined(separator: "}, {"))}; known: {timestamp}, {commit}, {short_commit}")
            } else if version.isEmpty || version.contains("/") || version.hasPrefix(".") {
                reader.problem("\(path).version", map?["version"], "'\(version)' cannot name a release folder")
            } else {
                build.version = version
            }
        }
        if let artifact = reader.string(map, "artifact", path) {
            if artifact.isEmpty || artifact.hasPrefix("/") || artifact.contains("..") {
                reader.problem("\(path).artifact", map?["artifact"], "must be a glob inside the checkout, like build/libs/*.jar")
            } else {
                build.artifact = artifact
            }
        }
        if let timeout = reader.duration(map, "timeout", path) { build.timeout = timeout }
        if let env = reader.stringMap(map, "env", path) { build.env = env }
        if let cancel = reader.bool(map, "cancel_superseded", path) { build.cancelSuperseded = cancel }
        return build
    }

    private func run(_ node: Node, _ path: String) -> RunConfig {
        var run = RunConfig()
        let map = reader.mapping(node, path, allowed: ["command", "env", "stop_timeout", "runner", "log_max_size"])
        if let command = reader.argumentList(map, "command", path) { run.command = command }
        if let size = reader.size(map, "log_max_size", path, range: 64 << 10 ... 1 << 40) { run.logMaxBytes = size }
        if let env = reader.stringMap(map, "env", path) { run.env = env }
        if let timeout = reader.duration(map, "stop_timeout", path) { run.stopTimeout = timeout }
        if let runner = reader.string(map, "runner", path) {
            if let kind = RunnerKind(rawValue: runner) {
                run.runner = kind
            } else {
                reader.problem("\(path).runner", map?["runner"], "'\(runner)' is not a runner; use process or systemd")
            }
        }
        let texts = run.command + Array(run.env.values)
        if run.runner == .process, !texts.contains(where: { $0.contains("{port}") }) {
            reader.problem("\(path).command", map?["command"], "must pass {port} to the app (for example --server.port={port})")
        }
        let unknown = texts.reduce(into: Set<String>()) { $0.formUnion(Self.placeholders(in: $1)) }
            .subtracting(["jar", "port", "slot", "version", "release_dir", "commit"])
        if !unknown.isEmpty {
            reader.problem("\(path).command", map?["command"],
                           "unknown placeholder {\(unknown.sorted().joined(separator: "}, {"))}; known: {jar}, {port}, {slot}, {version}, {release_dir}, {commit}")
        }
        return run
    }

    private func strategy(_ map: [String: Node], _ path: String) -> Strategy? {
        let name = reader.string(map, "strategy", path) ?? "blue-green"
        if name != "canary", map["canary"] != nil {
            reader.problem("\(path).canary", map["canary"], "only for strategy: canary")
        }
        switch name {
        case "blue-green", "canary":
            if map["instances"] != nil {
                reader.problem("\(path).instances", map["instances"], "only for strategy: rolling; blue-green uses slots")
            }
            guard let slotsNode = map["slots"] else {
                reader.problem("\(path).slots", nil, "missing: blue-green needs slots: { blue: PORT, green: PORT }")
                return nil
            }
            let slots = reader.mapping(slotsNode, "\(path).slots", allowed: ["blue", "green"])
            for slot in ["blue", "green"] where slots != nil && slots?[slot] == nil {
                reader.problem("\(path).slots.\(slot)", slotsNode, "missing (required)")
            }
            guard let blue = reader.int(slots, "blue", "\(path).slots", range: 1...65535),
                  let green = reader.int(slots, "green", "\(path).slots", range: 1...65535) else { return nil }
            if blue == green {
                reader.problem("\(path).slots", slotsNode, "blue and green must use two different ports, both are \(blue)")
                return nil
            }
            if name == "canary" {
                let plan = map["canary"].map { canaryPlan($0, "\(path).canary") } ?? CanaryPlan()
                return .canary(blue: blue, green: green, plan: plan)
            }
            return .blueGreen(blue: blue, green: green)
        case "rolling":
            if map["slots"] != nil {
                reader.problem("\(path).slots", map["slots"], "only for strategy: blue-green; rolling uses instances")
            }
            guard let node = map["instances"], case let .sequence(list) = node, !list.isEmpty else {
                reader.problem("\(path).instances", map["instances"], "rolling needs a list of ports, like instances: [8081, 8082, 8083]")
                return nil
            }
            var ports: [Int] = []
            for item in list {
                guard let port = item.scalar.flatMap({ Int($0.string) }), (1...65535).contains(port) else {
                    reader.problem("\(path).instances", item, "'\(item.scalar?.string ?? "…")' is not a port")
                    continue
                }
                if ports.contains(port) {
                    reader.problem("\(path).instances", item, "port \(port) is listed twice")
                }
                ports.append(port)
            }
            if ports.count == 1 {
                // Replacing the only instance would leave nothing serving while it restarts.
                reader.problem("\(path).instances", node, "rolling replaces one instance at a time and needs at least two "
                               + "(with one, every deployment is an outage); use strategy: blue-green with two slots, or add a port")
                return nil
            }
            return ports.isEmpty ? nil : .rolling(instances: ports)
        default:
            reader.problem("\(path).strategy", map["strategy"], "'\(name)' is not a strategy; use blue-green, canary or rolling")
            return nil
        }
    }

    private func health(_ node: Node, _ path: String) -> HealthConfig {
        var health = HealthConfig()
        let map = reader.mapping(node, path, allowed: ["path", "expect_status", "expect_body", "interval", "startup_timeout"])
        if let value = reader.string(map, "path", path) {
            if value.hasPrefix("/") { health.path = value } else {
                reader.problem("\(path).path", map?["path"], "must start with /, like /actuator/health")
            }
        }
        if let status = reader.int(map, "expect_status", path, range: 100...599) { health.expectStatus = status }
        if map?["expect_body"] != nil { health.expectBody = reader.string(map, "expect_body", path).flatMap { $0.isEmpty ? nil : $0 } }
        if let interval = reader.duration(map, "interval", path) { health.interval = interval }
        if let timeout = reader.duration(map, "startup_timeout", path) { health.startupTimeout = timeout }
        if health.startupTimeout < health.interval {
            reader.problem("\(path).startup_timeout", map?["startup_timeout"], "must be longer than interval")
        }
        return health
    }

    private func nginx(_ node: Node, _ path: String) -> NginxConfig? {
        let map = reader.mapping(node, path, allowed: ["include_file", "test", "reload", "verify_url", "access_log"])
        guard let map, let file = reader.string(map, "include_file", path, required: true) else { return nil }
        let includeFile = resolve(file)
        var isDirectory: ObjCBool = false
        let folder = (includeFile as NSString).deletingLastPathComponent
        if !FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) || !isDirectory.boolValue {
            reader.problem("\(path).include_file", map["include_file"], "the folder \(folder) does not exist")
        }
        var nginx = NginxConfig(includeFile: includeFile)
        if let test = reader.argumentList(map, "test", path) { nginx.test = test }
        if let reload = reader.argumentList(map, "reload", path) { nginx.reload = reload }
        if let log = reader.string(map, "access_log", path) { nginx.accessLog = resolve(log) }
        if let url = reader.string(map, "verify_url", path) {
            if let parsed = URL(string: url), parsed.scheme == "http" || parsed.scheme == "https", parsed.host != nil {
                nginx.verifyURL = url
            } else {
                reader.problem("\(path).verify_url", map["verify_url"], "'\(url)' is not an http(s) URL")
            }
        }
        return nginx
    }

    private func commitStatus(_ node: Node, _ path: String, repository: RepositoryConfig?) -> CommitStatusConfig? {
        let map = reader.mapping(node, path, allowed: ["provider", "api_url", "repository", "token_file", "token_env"])
        guard let map else { return nil }
        let providerName = reader.string(map, "provider", path, required: true)
        guard let providerName else { return nil }
        guard let provider = CommitStatusConfig.Provider(rawValue: providerName) else {
            reader.problem("\(path).provider", map["provider"], "'\(providerName)' is not a provider; use github, gitea or gitlab")
            return nil
        }
        let defaultAPI: String? = switch provider {
        case .github: "https://api.github.com"
        case .gitlab: "https://gitlab.com/api/v4"
        case .gitea: nil
        }
        guard let api = reader.string(map, "api_url", path) ?? defaultAPI else {
            reader.problem("\(path).api_url", node, "missing: Gitea's API is at https://<your host>/api/v1")
            return nil
        }
        // By default the repository's owner/name (or GitLab's namespace path) from its URL.
        let fromURL = repository.map { RepositoryMatcher.normalize($0.url) }.flatMap { normalized in
            normalized.firstIndex(of: "/").map { String(normalized[normalized.index(after: $0)...]) }
        }
        guard let name = reader.string(map, "repository", path) ?? fromURL, !name.isEmpty else {
            reader.problem("\(path).repository", node, "missing: owner/name, or the GitLab project id")
            return nil
        }
        guard let token = secret(map, fileKey: "token_file", envKey: "token_env", path: path) else {
            if map["token_file"] == nil, map["token_env"] == nil {
                reader.problem(path, node, "a token is needed to post statuses (token_file or token_env)")
            }
            return nil
        }
        return CommitStatusConfig(provider: provider, apiURL: api, repository: name, token: token)
    }

    private func canaryPlan(_ node: Node, _ path: String) -> CanaryPlan {
        var plan = CanaryPlan()
        let map = reader.mapping(node, path, allowed: ["steps", "step_watch"])
        if let node = map?["steps"] {
            guard case let .sequence(items) = node, !items.isEmpty else {
                reader.problem("\(path).steps", node, "a list of percentages ending with 100, like [10, 50, 100]")
                return plan
            }
            var steps: [Int] = []
            for item in items {
                guard let step = item.scalar.flatMap({ Int($0.string.replacingOccurrences(of: "%", with: "")) }), (1...100).contains(step) else {
                    reader.problem("\(path).steps", item, "'\(item.scalar?.string ?? "…")' is not a percentage from 1 to 100")
                    return plan
                }
                if let last = steps.last, step <= last {
                    reader.problem("\(path).steps", item, "steps must rise: \(step) comes after \(last)")
                    return plan
                }
                steps.append(step)
            }
            if steps.last != 100 {
                steps.append(100)  // the last step sends every request to the new release
            }
            plan.steps = steps
        }
        if let watch = reader.duration(map, "step_watch", path) { plan.stepWatch = watch }
        return plan
    }

    private func guardConfig(_ node: Node, _ path: String) -> GuardConfig? {
        guard let map = reader.mapping(node, path, allowed: ["max_error_ratio", "min_requests", "window", "max_p99"]) else { return nil }
        var config = GuardConfig()
        if let node = map["max_error_ratio"] {
            if let value = node.scalar.flatMap({ Double($0.string) }), (0...1).contains(value) {
                config.maxErrorRatio = value
            } else {
                reader.problem("\(path).max_error_ratio", node, "a share between 0 and 1, like 0.05")
            }
        }
        if let value = reader.int(map, "min_requests", path, range: 1...1_000_000) { config.minRequests = value }
        if let value = reader.duration(map, "window", path) { config.window = value }
        config.maxP99 = reader.duration(map, "max_p99", path)
        return config
    }

    private func notify(_ node: Node, _ path: String) -> [NotifyTarget] {
        guard case let .sequence(items) = node else {
            reader.problem(path, node, "a list of targets, like - { kind: slack, url_file: /etc/pushdeploy/slack_url, events: [failed] }")
            return []
        }
        var targets: [NotifyTarget] = []
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            guard let map = reader.mapping(item, itemPath, allowed: ["kind", "url", "url_file", "url_env", "events"]) else { continue }
            guard let kindName = reader.string(map, "kind", itemPath, required: true) else { continue }
            guard let kind = NotifyTarget.Kind(rawValue: kindName) else {
                reader.problem("\(itemPath).kind", map["kind"], "'\(kindName)' is not a kind; use slack or json")
                continue
            }
            let url: Secret?
            if let plain = reader.string(map, "url", itemPath) {
                url = map["url_file"] == nil && map["url_env"] == nil ? Secret(plain) : nil
                if url == nil { reader.problem(itemPath, item, "give one of url, url_file and url_env") }
            } else {
                url = secret(map, fileKey: "url_file", envKey: "url_env", path: itemPath)
            }
            guard let url else {
                if map["url"] == nil, map["url_file"] == nil, map["url_env"] == nil { reader.problem(itemPath, item, "missing: url, url_file or url_env") }
                continue
            }
            guard let scheme = URLComponents(string: url.text)?.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
                reader.problem(itemPath, item, "the URL is not http:// or https://")
                continue
            }
            var events = Set(NotifyEvent.allCases)
            if let node = map["events"] {
                if case let .sequence(names) = node {
                    events = []
                    for name in names {
                        guard let text = name.scalar?.string, let event = NotifyEvent(rawValue: text) else {
                            reader.problem("\(itemPath).events", name, "'\(name.scalar?.string ?? "…")' is not an event; use "
                                           + NotifyEvent.allCases.map(\.rawValue).joined(separator: ", "))
                            continue
                        }
                        events.insert(event)
                    }
                } else {
                    reader.problem("\(itemPath).events", node, "a list, like [succeeded, failed]")
                }
            }
            targets.append(NotifyTarget(kind: kind, url: url, events: events))
        }
        return targets
    }

    private func hooks(_ node: Node, _ path: String) -> LifecycleHooks {
        var hooks = LifecycleHooks()
        let map = reader.mapping(node, path, allowed: [
            "before_build", "after_build", "before_switch", "after_switch", "after_rollback", "on_failure", "timeout",
        ])
        func command(_ key: String) -> [String]? {
            guard var arguments = reader.argumentList(map, key, path) else { return nil }
            if arguments[0].contains("/") {
                arguments[0] = resolve(arguments[0])
                if !FileManager.default.isExecutableFile(atPath: arguments[0]) {
                    reader.problem("\(path).\(key)", map?[key], "\(arguments[0]) is not an executable file")
                }
            }
            return arguments
        }
        hooks.beforeBuild = command("before_build")
        hooks.afterBuild = command("after_build")
        hooks.beforeSwitch = command("before_switch")
        hooks.afterSwitch = command("after_switch")
        hooks.afterRollback = command("after_rollback")
        hooks.onFailure = command("on_failure")
        if let timeout = reader.duration(map, "timeout", path) { hooks.timeout = timeout }
        return hooks
    }

    private func checkPorts(_ apps: [AppConfig], listen: ListenAddress, top: [String: Node]) {
        var owners: [Int: String] = [:]
        for app in apps {
            for port in app.ports {
                if port == listen.port {
                    reader.problem("apps.\(app.name)", top["apps"], "port \(port) is the port pushdeploy listens on")
                }
                if let other = owners[port], other != app.name {
                    reader.problem("apps.\(app.name)", top["apps"], "port \(port) is also used by app \(other): two apps cannot share a port")
                }
                owners[port] = app.name
            }
        }
    }

    /// A secret from `fileKey` (a file) or `envKey` (an environment variable), never from the YAML itself.
    private func secret(_ map: [String: Node]?, fileKey: String, envKey: String, path: String) -> Secret? {
        let file = reader.string(map, fileKey, path)
        let env = reader.string(map, envKey, path)
        if file != nil, env != nil {
            reader.problem(path, map?[fileKey], "give \(fileKey) or \(envKey), not both")
            return nil
        }
        if let file {
            let resolved = resolve(file)
            guard let data = FileManager.default.contents(atPath: resolved) else {
                reader.problem(reader.join(path, fileKey), map?[fileKey], "secret file \(resolved) is missing or unreadable")
                return nil
            }
            var info = stat()
            if stat(resolved, &info) == 0, info.st_mode & 0o044 != 0 {
                reader.warnings.append("\(reader.join(path, fileKey)): secret file \(resolved) can be read by its group or by others "
                                + "(mode \(String(info.st_mode & 0o777, radix: 8))): chmod 600 it")
            }
            let bytes = Array(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines).utf8)
            guard !bytes.isEmpty else {
                reader.problem(reader.join(path, fileKey), map?[fileKey], "secret file \(resolved) is empty")
                return nil
            }
            return Secret(bytes)
        }
        if let env {
            guard let value = environment[env], !value.isEmpty else {
                reader.problem(reader.join(path, envKey), map?[envKey], "environment variable \(env) is not set")
                return nil
            }
            return Secret(value)
        }
        return nil
    }

    private func existingFile(_ map: [String: Node], _ key: String, _ path: String) -> String? {
        guard let file = reader.string(map, key, path) else { return nil }
        let resolved = resolve(file)
        guard FileManager.default.isReadableFile(atPath: resolved) else {
            reader.problem("\(path).\(key)", map[key], "\(resolved) is missing or unreadable")
            return nil
        }
        return resolved
    }

    private func listenAddress(_ text: String, _ node: Node?) -> ListenAddress? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (0...65535).contains(port) else {
            reader.problem("listen", node, "'\(text)' is not host:port, like 127.0.0.1:9000")
            return nil
        }
        let host = String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        return ListenAddress(host: host.isEmpty ? "127.0.0.1" : host, port: port)
    }

    private func resolve(_ path: String) -> String {
        if let credential = SystemdCredentials.path(path, environment: environment) { return credential }
        if path.hasPrefix("/") { return path }
        if path.hasPrefix("~/"), let home = environment["HOME"] { return home + path.dropFirst(1) }
        return URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: base, isDirectory: true)).standardizedFileURL.path
    }

    static func isSSH(_ url: String) -> Bool {
        url.hasPrefix("ssh://") || (!url.contains("://") && url.contains("@") && url.contains(":"))
    }

    static func isRemote(_ url: String) -> Bool {
        url.contains("://") || isSSH(url)
    }

    static func placeholders(in text: String) -> Set<String> {
        var names: Set<String> = []
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "{") {
            guard let close = rest[open...].firstIndex(of: "}") else { break }
            names.insert(String(rest[rest.index(after: open)..<close]))
            rest = rest[rest.index(after: close)...]
        }
        return names
    }
}
