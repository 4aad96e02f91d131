import Foundation

/// The whole of `pushdeploy.yml`, validated once at start-up and passed down as one value.
public struct Config: Sendable {
    public var listen: ListenAddress
    public var stateDirectory: String
    /// The bearer token for the manual API and the CLI.
    public var token: Secret?
    /// The largest request body accepted, in bytes.
    public var bodyLimit: Int
    /// The most connections the HTTP server holds at once (`max_connections`); one past it is closed at once.
    public var maxConnections = 512
    /// The apps in the order the file names them.
    public var apps: [AppConfig]
    /// The file the config was read from, to resolve relative paths against.
    public var baseDirectory: String
    /// What is allowed but unsafe (a secret file others can read), for `check` and the server log.
    public var warnings: [String] = []
    /// Where people reach the dashboard (`public_url`), for links in commit statuses and notifications.
    public var publicURL: String?

    public init(listen: ListenAddress = ListenAddress(host: "127.0.0.1", port: 9000), stateDirectory: String,
                token: Secret? = nil, bodyLimit: Int = 5 * 1024 * 1024, apps: [AppConfig], baseDirectory: String = ".") {
        self.listen = listen
        self.stateDirectory = stateDirectory
        self.token = token
        self.bodyLimit = bodyLimit
        self.apps = apps
        self.baseDirectory = baseDirectory
    }

    /// The app with this name.
    public func app(named name: String) -> AppConfig? {
        apps.first { $0.name == name }
    }
}

/// Host and port the HTTP server listens on.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { "\(host):\(port)" }
}

/// One deployed app: where its code comes from, how it is built, run, checked and switched.
public struct AppConfig: Sendable {
    public var name: String
    public var repository: RepositoryConfig
    public var webhooks: WebhookSecrets
    public var build: BuildConfig
    public var run: RunConfig
    public var strategy: Strategy
    public var health: HealthConfig
    /// After the switch: a release that turns unhealthy within this window is switched back.
    public var watch: Duration
    /// Whether the previous slot keeps running after a deployment (until the next one) for a fast rollback.
    public var keepPreviousWarm: Bool
    public var nginx: NginxConfig?
    public var keepReleases: Int
    public var hooks: LifecycleHooks
    /// Deployments kept in the history (`keep_history`); the live release's and the rollback target's stay.
    public var keepHistory: Int = AppHistorySettings.defaultKeepHistory
    /// The most a deployment log grows to (`deploy_log_max_size`); past it the start is cut, the tail kept.
    public var logMaxBytes: Int = AppHistorySettings.defaultLogMaxBytes
    /// The git host's commit status for each deployed commit (`commit_status`).
    public var commitStatus: CommitStatusConfig?
    /// Chat and JSON webhooks told about deployments (`notify`).
    public var notify: [NotifyTarget] = []
    /// Judges the new release by what nginx saw during the watch (`guard`); nil: only the health check watches.
    public var guardConfig: GuardConfig?

    /// Every port the app's instances may use.
    public var ports: [Int] {
        switch strategy {
        case let .blueGreen(blue, green), let .canary(blue, green, _): [blue, green]
        case let .rolling(instances): instances
        }
    }
}

/// Where the app's source comes from and how pushdeploy authenticates.
public struct RepositoryConfig: Sendable {
    public var url: String
    public var branch: String
    public var sshKey: String?
    public var knownHosts: String?
    /// Accept any ssh host key: an explicit opt-out of host key checking.
    public var insecureIgnoreHostKey: Bool
    public var username: String?
    /// An https token (a personal access token), from a file or the environment.
    public var token: Secret?
    /// The longest a fetch may take (`repository.timeout`), a silent remote included.
    public var timeout: Duration = .seconds(120)

    public init(url: String, branch: String = "main", sshKey: String? = nil, knownHosts: String? = nil,
                insecureIgnoreHostKey: Bool = false, username: String? = nil, token: Secret? = nil) {
        self.url = url
        self.branch = branch
        self.sshKey = sshKey
        self.knownHosts = knownHosts
        self.insecureIgnoreHostKey = insecureIgnoreHostKey
        self.username = username
        self.token = token
    }
}

/// The secrets each webhook sender signs with; a sender without one is refused.
public struct WebhookSecrets: Sendable {
    /// HMAC key for `X-Hub-Signature-256` (GitHub and Gitea).
    public var github: Secret?
    /// The value GitLab sends in `X-Gitlab-Token`.
    public var gitlab: Secret?
    /// Travis CI's public key (PEM) for the `Signature` header.
    public var travisPublicKeyPEM: String?

    public init(github: Secret? = nil, gitlab: Secret? = nil, travisPublicKeyPEM: String? = nil) {
        self.github = github
        self.gitlab = gitlab
        self.travisPublicKeyPEM = travisPublicKeyPEM
    }
}

/// How a release is built.
public struct BuildConfig: Sendable {
    /// The argument list run in the checkout; no shell.
    public var command: [String]
    /// The version pattern; `{timestamp}` becomes `yyyyMMddHHmmss`.
    public var version: String
    /// A glob, relative to the checkout, that finds the jar.
    public var artifact: String
    public var timeout: Duration
    public var env: [String: String]
    /// A newer push cancels a build that it makes pointless.
    public var cancelSuperseded: Bool

    public init(command: [String] = ["./gradlew", "bootJar"], version: String = "1.0.0-{timestamp}",
                artifact: String = "build/libs/*.jar", timeout: Duration = .seconds(900), env: [String: String] = [:],
                cancelSuperseded: Bool = false) {
        self.command = command
        self.version = version
        self.artifact = artifact
        self.timeout = timeout
        self.env = env
        self.cancelSuperseded = cancelSuperseded
    }
}

/// How an instance of a release is started and stopped.
public struct RunConfig: Sendable {
    /// An instance's stdout log past this size is rotated (`run.log_max_size`); 3 rotated files are kept.
    public var logMaxBytes: Int = 50 << 20
    /// The argument list; `{jar}`, `{port}`, `{slot}`, `{version}` are filled in.
    public var command: [String]
    public var env: [String: String]
    public var stopTimeout: Duration
    /// `process` (detached child processes) or `systemd` (`pushdeploy-app@<port>.service`).
    public var runner: RunnerKind

    public init(command: [String] = ["java", "-jar", "{jar}", "--server.port={port}"], env: [String: String] = [:],
                stopTimeout: Duration = .seconds(30), runner: RunnerKind = .process) {
        self.command = command
        self.env = env
        self.stopTimeout = stopTimeout
        self.runner = runner
    }
}

/// What starts and stops instances.
public enum RunnerKind: String, Sendable {
    case process, systemd
}

/// How traffic moves to a new release.
public enum Strategy: Sendable, Equatable {
    /// Two slots; the idle one gets the new release, then nginx flips.
    case blueGreen(blue: Int, green: Int)
    /// Several instances behind an `upstream`, replaced one at a time.
    case rolling(instances: [Int])
    /// Blue-green's two slots, with the new release given a growing share of requests before it takes them all.
    case canary(blue: Int, green: Int, plan: CanaryPlan)

    /// The name used in the config and in deployment records.
    public var name: String {
        switch self {
        case .blueGreen: "blue-green"
        case .rolling: "rolling"
        case .canary: "canary"
        }
    }

    /// The steps of a canary; nil for the other strategies.
    public var canaryPlan: CanaryPlan? {
        if case let .canary(_, _, plan) = self { plan } else { nil }
    }

    /// The two slots of blue-green and canary; nil for rolling.
    public var slots: (blue: Int, green: Int)? {
        switch self {
        case let .blueGreen(blue, green), let .canary(blue, green, _): (blue, green)
        case .rolling: nil
        }
    }
}

/// A canary's steps: the share of requests the new release gets at each step, and how long each is watched.
public struct CanaryPlan: Sendable, Equatable {
    /// Percentages, rising, the last one 100.
    public var steps: [Int]
    /// How long each step below 100 % is watched before the next.
    public var stepWatch: Duration

    public init(steps: [Int] = [10, 50, 100], stepWatch: Duration = .seconds(30)) {
        self.steps = steps
        self.stepWatch = stepWatch
    }
}

/// How pushdeploy decides that an instance is healthy.
public struct HealthConfig: Sendable {
    public var path: String
    public var expectStatus: Int
    /// Text the body must contain; nil accepts any body.
    public var expectBody: String?
    public var interval: Duration
    public var startupTimeout: Duration

    public init(path: String = "/actuator/health", expectStatus: Int = 200, expectBody: String? = "UP",
                interval: Duration = .milliseconds(250), startupTimeout: Duration = .seconds(120)) {
        self.path = path
        self.expectStatus = expectStatus
        self.expectBody = expectBody
        self.interval = interval
        self.startupTimeout = startupTimeout
    }
}

/// The nginx include file pushdeploy owns and the commands that test and reload nginx.
public struct NginxConfig: Sendable {
    public var includeFile: String
    /// The access log in pushdeploy's format (`examples/nginx-site.conf`), the guard's signal; nil turns the guard off.
    public var accessLog: String?
    public var test: [String]
    public var reload: [String]
    /// A URL through nginx that must answer from the new release after the switch.
    public var verifyURL: String?

    public init(includeFile: String, test: [String] = ["nginx", "-t"], reload: [String] = ["nginx", "-s", "reload"],
                verifyURL: String? = nil) {
        self.includeFile = includeFile
        self.test = test
        self.reload = reload
        self.verifyURL = verifyURL
    }
}

/// Commands run around a deployment, each an argument list run without a shell.
public struct LifecycleHooks: Sendable {
    public var beforeBuild: [String]?
    public var afterBuild: [String]?
    public var beforeSwitch: [String]?
    public var afterSwitch: [String]?
    public var afterRollback: [String]?
    public var onFailure: [String]?
    public var timeout: Duration

    public init(beforeBuild: [String]? = nil, afterBuild: [String]? = nil, beforeSwitch: [String]? = nil,
                afterSwitch: [String]? = nil, afterRollback: [String]? = nil, onFailure: [String]? = nil,
                timeout: Duration = .seconds(60)) {
        self.beforeBuild = beforeBuild
        self.afterBuild = afterBuild
        self.beforeSwitch = beforeSwitch
        self.afterSwitch = afterSwitch
        self.afterRollback = afterRollback
        self.onFailure = onFailure
        self.timeout = timeout
    }
}
