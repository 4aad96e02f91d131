import Foundation
#if canImport(Glibc)
import Glibc
#endif
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

/// A state folder, a private nginx and stored releases of the demo app: what a rollout test needs, all cleaned up.
final class RolloutLab: Sendable {
    let directory: String
    let nginx: PrivateNginx
    let releases: FileReleaseStore
    let appName = "demo"

    init(rolling: Bool = false) throws {
        directory = NSTemporaryDirectory() + "pushdeploy-lab-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        nginx = try PrivateNginx(prefix: directory + "/nginx", app: "demo", rolling: rolling)
        releases = FileReleaseStore(stateDirectory: directory)
    }

    /// Stores the demo jar as release `version` (the version the app reports comes from `-Ddemo.version`).
    func release(_ version: String, commit: String = String(repeating: "c", count: 40)) async throws -> Release {
        let jar = try await DemoJar.shared.path()
        let release = Release(app: appName, version: version, commit: commit, builtAt: Date(), buildSeconds: 1, sha256: "test")
        _ = try await releases.reserve(app: appName, version: version)
        try await releases.store(release, jarAt: jar)
        return release
    }

    /// An app config for the lab: the demo jar, the private nginx, quick health polling.
    func app(strategy: Strategy, watch: Duration = .zero, extraArguments: [String] = [], hooks: LifecycleHooks = LifecycleHooks(),
             keepPreviousWarm: Bool = true) -> AppConfig {
        AppConfig(
            name: appName, repository: RepositoryConfig(url: directory + "/unused"), webhooks: WebhookSecrets(),
            build: BuildConfig(),
            run: RunConfig(command: ["/usr/bin/java", "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-Ddemo.version={version}", "-jar", "{jar}",
                                     "--server.port={port}", "--shutdown-grace=2s"] + extraArguments,
                           stopTimeout: .seconds(5)),
            strategy: strategy,
            health: HealthConfig(path: "/actuator/health", expectStatus: 200, expectBody: "UP", interval: .milliseconds(100),
                                 startupTimeout: .seconds(60)),
            watch: watch, keepPreviousWarm: keepPreviousWarm, nginx: nginx.nginxConfig, keepReleases: 5, hooks: hooks)
    }

    /// The version nginx serves now, from the demo app's `/` answer (`demo-app <version>`).
    func servedVersion() -> String? {
        guard let (status, body) = nginx.get(), status == 200 else { return nil }
        return body.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").dropFirst().first.map(String.init)
    }

    /// Stops every instance the state file still lists, nginx, and removes the folder.
    func tearDown() async {
        let stateFile = directory + "/apps/\(appName)/state.json"
        if let data = FileManager.default.contents(atPath: stateFile),
           let state = try? JSONDecoder.pushDeploy.decode(AppState.self, from: data) {
            for entry in state.entries {
                if let pid = entry.instance.pid { kill(-pid, SIGKILL); kill(pid, SIGKILL) }
            }
        }
        // Anything else started from this lab's releases (a half-started instance) goes too.
        _ = try? Integration.run("/usr/bin/pkill", ["-KILL", "-f", directory])
        nginx.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
