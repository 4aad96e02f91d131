import Foundation

/// Builds a checkout with the configured command (`./gradlew bootJar`), stamps the release version on the jar and stores it.
///
/// The command runs as an argument list in the checkout, with `DEPLOY_VERSION`, `DEPLOY_COMMIT`, `DEPLOY_APP`
/// and `DEPLOY_ID` added to `build.env`. When the program is `gradle` or `gradlew`, `-I <init script>
/// -PpushdeployVersion=<version>` is added so that the version lands on the jar even if `build.gradle` sets its
/// own (see ``GradleInitScript``). Nothing else is added: the daemon stays warm between builds unless the command
/// says `--no-daemon`, and `GRADLE_OPTS` or `GRADLE_USER_HOME` reach Gradle only through `build.env`.
/// A failed, timed-out or cancelled build gives up its reserved version and leaves nothing under `releases/`.
///
/// Gradle 4.4.1 from Debian runs on the installed Java 17 as is (Debian patches it; its launcher already passes
/// `--add-opens java.base/java.lang=ALL-UNNAMED` after probing `java -version`, which is why every build log
/// starts with `openjdk version ...`): no `JAVA_HOME`, `--no-daemon` or `-Dorg.gradle...` needed.
/// With `--no-daemon` it builds inside the client JVM, so the whole build is in the command's process group.
public struct GradleBuilder: ReleaseBuilder {
    public var store: any ReleaseStore
    public var runner: any CommandRunner
    /// Where the version init script is kept (one file, the same for every build).
    public var scratchDirectory: String
    /// The wall clock, replaceable in tests.
    public var now: @Sendable () -> Date

    public init(store: any ReleaseStore, runner: any CommandRunner = SubprocessCommandRunner(),
                scratchDirectory: String = NSTemporaryDirectory(), now: @escaping @Sendable () -> Date = { Date() }) {
        self.store = store
        self.runner = runner
        self.scratchDirectory = scratchDirectory
        self.now = now
    }

    public func build(_ request: BuildRequest, log: any DeploymentLog) async throws -> Release {
        guard !request.build.command.isEmpty else {
            throw BuildError.couldNotStart(command: "", reason: "build.command is empty")
        }
        let started = ContinuousClock.now
        let startDate = now()
        let version = try await reserveVersion(for: request)
        do {
            let jar = try await runBuild(request, version: version, since: startDate, log: log)
            try Task.checkCancellation()
            // Milliseconds, as release.json keeps them.
            let builtAt = Date(timeIntervalSince1970: (now().timeIntervalSince1970 * 1000).rounded(.down) / 1000)
            let release = Release(app: request.app, version: version, commit: request.commit, builtAt: builtAt,
                                  buildSeconds: (ContinuousClock.now - started).seconds,
                                  sha256: try ArtifactFinder.sha256(of: jar))
            try await store.store(release, jarAt: jar)
            log.line("build: stored \(version) from \(jar) (sha256 \(release.sha256.prefix(12)))")
            // What was written, read back: the caller and a later rollback see the same value.
            return try await store.release(app: request.app, version: version) ?? release
        } catch {
            try? await store.discard(app: request.app, version: version)
            throw error
        }
    }

    /// Runs the command and returns the path of the jar it wrote.
    private func runBuild(_ request: BuildRequest, version: String, since: Date, log: any DeploymentLog) async throws -> String {
        var environment = request.build.env
        environment["DEPLOY_VERSION"] = version
        environment["DEPLOY_COMMIT"] = request.commit
        environment["DEPLOY_APP"] = request.app
        environment["DEPLOY_ID"] = String(request.deploymentID)
        var arguments = request.build.command
        if GradleInitScript.applies(to: arguments) {
            let script = try GradleInitScript.install(in: scratchDirectory)
            arguments = GradleInitScript.command(arguments, script: script, version: version)
        }
        let command = Command(arguments, workingDirectory: request.checkoutPath, environment: environment)
        log.line("build: \(command) in \(request.checkoutPath), version \(version)")
        let result: CommandResult
        do {
            result = try await runner.run(command, log: log, timeout: request.build.timeout)
        } catch let error as CommandError {
            switch error {
            case let .timedOut(_, after, tail): throw BuildError.timedOut(after: after, outputTail: tail)
            case let .launchFailed(command, reason): throw BuildError.couldNotStart(command: command, reason: reason)
            case .emptyCommand: throw BuildError.couldNotStart(command: "", reason: "build.command is empty")
            case let .failed(_, status, tail): throw BuildError.failed(status: status, outputTail: tail)
            }
        }
        guard result.status.isSuccess else {
            throw BuildError.failed(status: result.status, outputTail: result.outputTail)
        }
        log.line("build: command finished in \(String(format: "%.1f", result.seconds)) s")
        return try ArtifactFinder.find(glob: request.build.artifact, in: request.checkoutPath, version: version, since: since)
    }

    /// Picks the version and reserves it in the store, so that two builds never share one.
    ///
    /// On a clash a timestamped pattern waits for the next second, which keeps the classic
    /// `1.0.1-SNAPSHOT-yyyyMMddHHmmss` shape and its ordering; a pattern without `{timestamp}` (say
    /// `{short_commit}`, built twice) gets `-2`, `-3`, ... instead, since waiting would not change it.
    func reserveVersion(for request: BuildRequest) async throws -> String {
        let pattern = ReleaseVersion(pattern: request.build.version)
        var candidate = pattern.render(commit: request.commit, at: now())
        for attempt in 1 ... 20 {
            do {
                try ReleaseStoreError.validate(candidate)
            } catch {
                throw BuildError.invalidVersion(candidate)
            }
            if try await store.reserve(app: request.app, version: candidate) { return candidate }
            if pattern.isTimestamped {
                let current = now().timeIntervalSince1970
                let wait = current.rounded(.down) + 1 - current
                try await Task.sleep(for: .milliseconds(Int64(wait * 1000) + 5))
                candidate = pattern.render(commit: request.commit, at: now())
            } else {
                candidate = pattern.render(commit: request.commit, at: now()) + "-\(attempt + 1)"
            }
        }
        throw BuildError.versionUnavailable(candidate)
    }
}
