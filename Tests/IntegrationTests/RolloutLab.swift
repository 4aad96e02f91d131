import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import PushDeploy

/// Builds the demo app's jar once per test run, with Debian's Gradle, for every rollout test.
actor DemoJar {
    static let shared = DemoJar()
    private var built: String?

    /// The path of a runnable demo-app jar.
    func path() throws -> String {
        if let built { return built }
        let folder = NSTemporaryDirectory() + "pushdeploy-demo-jar-" + UUID().uuidString
        try FileManager.default.copyItem(atPath: Integration.root + "/examples/demo-app", toPath: folder)
        try? FileManager.default.removeItem(atPath: folder + "/build")
        try? FileManager.default.removeItem(atPath: folder + "/.gradle")
        let (status, output) = try Integration.run("/usr/bin/gradle", ["--offline", "--no-daemon", "-q", "bootJar"], in: folder)
        guard status == 0 else { throw ServerExited(log: "gradle bootJar failed: \(output)") }
        let libs = folder + "/build/libs"
        guard let jar = try FileManager.default.contentsOfDirectory(atPath: libs).first(where: { $0.hasSuffix(".jar") && !$0.hasSuffix("-plain.jar") }) else {
            throw ServerExited(log: "no jar in \(libs)")
        }
        built = libs + "/" + jar
        return libs + "/" + jar
    }
}

/// Builds `Fixtures/fixed-app` once per test run with javac and jar: an app whose every answer is the same text.
actor FixedJar {
    static let shared = FixedJar()
    private var built: String?

    func path() throws -> String {
        if let built { return built }
        let folder = NSTemporaryDirectory() + "pushdeploy-fixed-jar-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder + "/classes", withIntermediateDirectories: true)
        let source = Integration.root + "/Tests/IntegrationTests/Fixtures/fixed-app/FixedApp.java"
        let (compiled, compileOutput) = try Integration.run("/usr/bin/javac", ["-d", folder + "/classes", source], in: folder)
        guard compiled == 0 else { throw ServerExited(log: "javac FixedApp.java failed: \(compileOutput)") }
        let jar = folder + "/fixed-app.jar"
        let (packed, packOutput) = try Integration.run("/usr/bin/jar", ["--create", "--file", jar, "--main-class", "FixedApp", "-C", folder + "/classes", "."],
                                                       in: folder)
        guard packed == 0 else { throw ServerExited(log: "jar failed: \(packOutput)") }
        built = jar
        return jar
    }
}

/// A state folder, a private nginx and stored releases of the demo app: what a rollout test needs, all cleaned up.
///
/// Each release is launched through a Java argument file, `launch/<version>.args` (`-jar <stored jar>` and the
/// release's own arguments), so one release can be broken (`--health=down`) while putting the previous one back
/// still starts it healthy, as with a real bad build.
final class RolloutLab: Sendable {
    /// The folder, nginx and slots; the lab's state and releases live in the same folder.
    let site: BlueGreenLab
    let releases: FileReleaseStore
    let state: AppStateStore
    let appName = "demo"

    var directory: String { site.folder }
    var nginx: PrivateNginx { site.nginx }

    private init(site: BlueGreenLab) throws {
        self.site = site
        try FileManager.default.createDirectory(atPath: site.folder + "/launch", withIntermediateDirectories: true)
        releases = FileReleaseStore(stateDirectory: site.folder)
        state = AppStateStore(stateDirectory: site.folder)
    }

    /// Runs `body` with a new lab and tears the lab down afterwards, also when `body` throws or an expectation fails.
    static func with(rolling: Bool = false, canary: Bool = false, readTimeout: Duration? = nil, _ body: (RolloutLab) async throws -> Void) async throws {
        try await BlueGreenLab.with("lab", rolling: rolling, canary: canary, readTimeout: readTimeout) { site in
            let lab = try RolloutLab(site: site)
            defer { lab.stopInstances() }
            try await body(lab)
        }
    }

    /// Stores the demo jar as release `version` (the version the app reports comes from `-Ddemo.version`);
    /// `arguments` are given to this release only.
    func release(_ version: String, arguments: [String] = [], commit: String = String(repeating: "c", count: 40)) async throws -> Release {
        let jar = try await DemoJar.shared.path()
        let release = Release(app: appName, version: version, commit: commit, builtAt: Date(), buildSeconds: 1, sha256: "test")
        _ = try releases.reserve(app: appName, version: version)
        try releases.store(release, jarAt: jar)
        // One argument a line, quoted: the java launcher splits argument files at white space.
        let lines = (["-jar", releases.jarPath(app: appName, version: version)] + arguments).map { "\"\($0)\"" }
        try (lines.joined(separator: "\n") + "\n").write(toFile: "\(directory)/launch/\(version).args", atomically: true, encoding: .utf8)
        return release
    }

    /// Stores the fixed-text app's jar as release `version`: nothing it answers names the version.
    func fixedRelease(_ version: String) async throws -> Release {
        let jar = try await FixedJar.shared.path()
        let release = Release(app: appName, version: version, commit: String(repeating: "f", count: 40), builtAt: Date(), buildSeconds: 1,
                              sha256: "test")
        _ = try releases.reserve(app: appName, version: version)
        try releases.store(release, jarAt: jar)
        let lines = ["-jar", releases.jarPath(app: appName, version: version)].map { "\"\($0)\"" }
        try (lines.joined(separator: "\n") + "\n").write(toFile: "\(directory)/launch/\(version).args", atomically: true, encoding: .utf8)
        return release
    }

    /// An app config for the lab: the demo jar, the private nginx, quick health polling.
    func app(strategy: Strategy, watch: Duration = .zero, extraArguments: [String] = [], hooks: LifecycleHooks = LifecycleHooks(),
             keepPreviousWarm: Bool = true, startupTimeout: Duration = .seconds(60)) -> AppConfig {
        AppConfig(
            name: appName, repository: RepositoryConfig(url: directory + "/unused"), webhooks: WebhookSecrets(),
            build: BuildConfig(),
            // The argument file must come before the app's own arguments: java expands none after `-jar <jar>`.
            run: RunConfig(command: ["/usr/bin/java", "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-Ddemo.version={version}",
                                     "@\(directory)/launch/{version}.args", "--server.port={port}", "--shutdown-grace=1s"] + extraArguments,
                           stopTimeout: .seconds(5)),
            strategy: strategy,
            health: HealthConfig(path: "/actuator/health", expectStatus: 200, expectBody: "UP", interval: .milliseconds(100),
                                 startupTimeout: startupTimeout),
            watch: watch, keepPreviousWarm: keepPreviousWarm, nginx: nginx.nginxConfig, keepReleases: 5, hooks: hooks)
    }

    /// The real parts: detached JVMs, HTTP health checks, the private nginx, the lab's state file and releases.
    func parts(hooks: any RolloutHooks = LifecycleHookRunner(workingDirectory: nil)) -> RolloutParts {
        RolloutParts(supervisor: ProcessAppSupervisor(stateDirectory: directory, releases: releases), health: HTTPHealthChecker(),
                     traffic: NginxTrafficSwitch(), state: state, releases: releases, hooks: hooks)
    }

    /// A progress for one deployment (or rollback) of the lab's app, with its record kept in memory.
    func progress(_ kind: DeploymentKind = .deploy, app: AppConfig, id: Int = 1) -> (DeploymentProgress, MemoryDeploymentRecord) {
        DeploymentProgress.inMemory(Deployment(id: id, app: appName, kind: kind, trigger: Trigger(source: .manual), strategy: app.strategy.name))
    }

    /// `count` different free ports for instances, none of them nginx's or a slot.
    func ports(_ count: Int) -> [Int] {
        let taken = [nginx.port, site.slots.blue, site.slots.green]
        return Array(Integration.freePorts(count + taken.count).filter { !taken.contains($0) }.prefix(count))
    }

    /// The lab's blue and green slot ports.
    func slots() -> (blue: Int, green: Int) {
        site.slots
    }

    /// Writes the include file as an operator sets it up before the first deployment (pointing at the first port,
    /// where nothing runs yet) and starts nginx on it.
    func startNginx(for app: AppConfig) throws {
        try site.startNginx(routedTo: [app.ports[0]], app: appName, strategy: app.strategy)
    }

    /// `state.json` as it is on disk (not the store's cache).
    func stateOnDisk() throws -> AppState {
        let data = try #require(FileManager.default.contents(atPath: state.path(app: appName)))
        return try JSONDecoder.pushDeploy.decode(AppState.self, from: data)
    }

    /// The version nginx serves now, from the demo app's `/` answer (`demo-app <version>`).
    func servedVersion() -> String? {
        site.servedVersion()
    }

    /// Of `requests` requests through nginx, the answers that did not come from `version` ("none" for a failure or a non-200 answer).
    func answers(otherThan version: String, requests: Int = 12) -> [String] {
        (0..<requests).map { _ in servedVersion() ?? "none" }.filter { $0 != version }
    }

    /// True once `consecutive` requests in a row through nginx come from `version`, polled until `deadline` passes.
    func eventuallyServesOnly(_ version: String, consecutive: Int = 12, within deadline: Duration = .seconds(5)) async -> Bool {
        await site.eventuallyServesOnly(version, consecutive: consecutive, within: deadline)
    }

    /// The demo versions of this lab's processes that run now (a zombie has no command line and is not counted).
    func runningVersions() -> [String] {
        site.processes().compactMap { process in
            process.arguments.first { $0.hasPrefix("-Ddemo.version=") }.map { String($0.dropFirst("-Ddemo.version=".count)) }
        }.sorted()
    }

    /// Kills the process group of every instance the state file still lists; the site's tear-down takes what else names the folder.
    private func stopInstances() {
        if let data = FileManager.default.contents(atPath: state.path(app: appName)),
           let state = try? JSONDecoder.pushDeploy.decode(AppState.self, from: data) {
            for entry in state.entries {
                if let pid = entry.instance.pid { kill(-pid, SIGKILL); kill(pid, SIGKILL) }
            }
        }
    }
}
