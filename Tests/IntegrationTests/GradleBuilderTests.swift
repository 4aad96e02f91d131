#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import PushDeploy

/// The real build: Debian's Gradle (`gradle --offline`) on `examples/demo-app`, the real runner and the file store.
///
/// Serialized: the Gradle builds share one daemon and would only queue behind each other anyway.
@Suite("GradleBuilder", .serialized, .enabled(if: GradleFixture.gradleAvailable, "needs gradle and java on PATH"))
struct GradleBuilderTests {
    @Test("builds the demo app, stamps the version on the jar over build.gradle's own, and stores it with release.json")
    func buildsDemoApp() async throws {
        let fixture = try GradleFixture()
        let log = MemoryDeploymentLog()
        let release = try await fixture.builder().build(fixture.request(), log: log)

        #expect(release.version.wholeMatch(of: /1\.0\.1-SNAPSHOT-\d{14}/) != nil)
        #expect(release.commit == GradleFixture.commit && release.app == "demo")
        #expect(release.buildSeconds > 0)
        let jar = fixture.store.jarPath(app: "demo", version: release.version)
        #expect(try await fixture.shell(["sha256sum", jar]).first?.hasPrefix(release.sha256) == true)
        let manifest = try await fixture.shell(["unzip", "-p", jar, "META-INF/MANIFEST.MF"])
        #expect(manifest.contains("Implementation-Version: \(release.version)"))
        #expect(manifest.contains("Main-Class: demo.DemoApp"))
        #expect(FileManager.default.fileExists(atPath: "\(fixture.checkout)/build/libs/demo-app-\(release.version).jar"))
        #expect(try fixture.store.release(app: "demo", version: release.version) == release)
        let json = try String(contentsOfFile: "\(fixture.store.directory(app: "demo", version: release.version))/release.json", encoding: .utf8)
        #expect(json.contains("\"built_at\"") && json.contains("\"build_seconds\"") && json.contains(release.sha256))
        // Gradle's own output went to the deployment's log.
        #expect(log.text.contains("BUILD SUCCESSFUL"))
        #expect(log.text.contains(":bootJar") || log.text.contains("> Task :bootJar"))
        // The version reached Gradle on its command line, through the one init script pushdeploy keeps.
        #expect(log.text.contains("-I \(fixture.scratch)/pushdeploy-release-version.init.gradle -PpushdeployVersion=\(release.version) --offline --no-daemon bootJar"))

        // The jar runs, answers with its version and is healthy.
        let app = try DemoAppProcess(jar: jar)
        defer { app.stop() }
        #expect(try await app.get("/") == "demo-app \(release.version)\n")
        #expect(try await app.get("/actuator/health") == #"{"status":"UP"}"#)
    }

    @Test("a broken build is failed with the compiler's last lines and stores nothing")
    func brokenBuild() async throws {
        let fixture = try GradleFixture()
        let source = "\(fixture.checkout)/src/main/java/demo/DemoApp.java"
        let text = try String(contentsOfFile: source, encoding: .utf8)
        try text.replacingOccurrences(of: "long started = ", with: "long started = nonsense + ").write(toFile: source, atomically: true, encoding: .utf8)
        let log = MemoryDeploymentLog()
        await #expect {
            _ = try await fixture.builder().build(fixture.request(), log: log)
        } throws: { error in
            guard case let .failed(status, tail) = error as? BuildError else { return false }
            return status == .exited(1) && tail.contains { $0.contains("error: cannot find symbol") || $0.contains("nonsense") }
        }
        #expect(log.text.contains("BUILD FAILED"))
        #expect(fixture.storedFolders().isEmpty)
    }

    @Test("a build past its timeout is stopped with every process it started, and stores nothing")
    func timeout() async throws {
        let fixture = try GradleFixture()
        try "\ntask slow { doLast { println 'slow task sleeping'; Thread.sleep(600000) } }\n"
            .appendLine(toFile: "\(fixture.checkout)/build.gradle")
        // --no-daemon: Gradle 4.4.1 then builds in the client JVM, so the whole build is in our process group.
        // (With a daemon, killing the client makes the daemon cancel the build; the daemon itself lives on by design.)
        let build = BuildConfig(command: ["gradle", "--offline", "--no-daemon", "slow", "bootJar"],
                                version: "1.0.1-SNAPSHOT-{timestamp}", timeout: .seconds(3))
        let started = ContinuousClock.now
        await #expect {
            _ = try await fixture.builder().build(fixture.request(build), log: MemoryDeploymentLog())
        } throws: { error in
            guard case let .timedOut(after, _) = error as? BuildError else { return false }
            return after == .seconds(3)
        }
        #expect(ContinuousClock.now - started < .seconds(20))
        #expect(try await fixture.processesInCheckout().isEmpty)
        #expect(fixture.storedFolders().isEmpty)
    }

    @Test("retention keeps the newest releases and the protected ones; a failed build takes no place")
    func retention() async throws {
        let fixture = try GradleFixture()
        let builder = fixture.builder()
        var versions: [String] = []
        for _ in 0 ..< 3 {
            versions.append(try await builder.build(fixture.request(), log: MemoryDeploymentLog()).version)
        }
        let failing = BuildConfig(command: ["gradle", "--offline", "--no-daemon", "noSuchTask"], version: "1.0.1-SNAPSHOT-{timestamp}")
        await #expect(throws: BuildError.self) { try await builder.build(fixture.request(failing), log: MemoryDeploymentLog()) }
        #expect(Set(versions).count == 3)
        #expect(try fixture.store.releases(app: "demo").map(\.version) == versions.reversed())

        // Keep 1, with the oldest as the rollback target: the middle one goes.
        let removed = try fixture.store.prune(app: "demo", keep: 1, protecting: [versions[0]])
        #expect(removed == [versions[1]])
        #expect(fixture.storedFolders() == [versions[0], versions[2]].sorted())
    }

    @Test("two builds in the same second get different versions, and the build sees DEPLOY_* variables")
    func sameSecond() async throws {
        let fixture = try GradleFixture()
        // Not Gradle: no init script; the command writes the jar itself.
        let script = #"mkdir -p build/libs && echo "$DEPLOY_APP $DEPLOY_COMMIT $DEPLOY_VERSION $DEPLOY_ID" > "build/libs/app-$DEPLOY_VERSION.jar""#
        let build = BuildConfig(command: ["sh", "-c", script], version: "1.0.1-SNAPSHOT-{timestamp}")
        let builder = fixture.builder()
        async let first = builder.build(fixture.request(build), log: MemoryDeploymentLog())
        async let second = builder.build(fixture.request(build), log: MemoryDeploymentLog())
        let releases = try await [first, second]
        #expect(releases[0].version != releases[1].version)
        for release in releases {
            let content = try String(contentsOfFile: fixture.store.jarPath(app: "demo", version: release.version), encoding: .utf8)
            #expect(content == "demo \(GradleFixture.commit) \(release.version) 7\n")
        }
        #expect(fixture.storedFolders().count == 2)
    }

    @Test("a jar the build did not write is not shipped")
    func staleJar() async throws {
        let fixture = try GradleFixture()
        try FileManager.default.createDirectory(atPath: "\(fixture.checkout)/build/libs", withIntermediateDirectories: true)
        let old = "\(fixture.checkout)/build/libs/demo-app-old.jar"
        try Data("old".utf8).write(to: URL(fileURLWithPath: old))
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: old)
        try Data("plain".utf8).write(to: URL(fileURLWithPath: "\(fixture.checkout)/build/libs/demo-app-plain.jar"))
        let build = BuildConfig(command: ["true"], version: "1.0.1-SNAPSHOT-{timestamp}")
        await #expect(throws: BuildError.artifactNotFound(glob: "build/libs/*.jar",
                                                         candidates: ["demo-app-old.jar (older than this build)", "demo-app-plain.jar (plain jar)"])) {
            try await fixture.builder().build(fixture.request(build), log: MemoryDeploymentLog())
        }
        #expect(fixture.storedFolders().isEmpty)
    }

    @Test("cancelling a build stops it and stores nothing")
    func cancellation() async throws {
        let fixture = try GradleFixture()
        let build = BuildConfig(command: ["sh", "-c", "echo building; sleep 120"], version: "1.0.1-SNAPSHOT-{timestamp}")
        let log = MemoryDeploymentLog()
        let builder = fixture.builder()
        let request = fixture.request(build)
        let task = Task { try await builder.build(request, log: log) }
        while !log.text.contains("building") { try await Task.sleep(for: .milliseconds(20)) }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(try await fixture.processesInCheckout().isEmpty)
        #expect(fixture.storedFolders().isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.store.root + "/demo").isEmpty)
    }
}

/// `bench/push-to-artifact`: a one-line change pushed, until its release is stored, against the classic
/// `git pull && gradle clean bootJar`. Runs only with `PUSHDEPLOY_BENCH=1` (the bench script sets it).
@Suite("PushToArtifactBench", .serialized, .enabled(if: GradleFixture.gradleAvailable && ProcessInfo.processInfo.environment["PUSHDEPLOY_BENCH"] == "1"))
struct PushToArtifactBench {
    @Test("push received to release stored")
    func pushToArtifact() async throws {
        let environment = ProcessInfo.processInfo.environment
        let runs = Int(environment["PUSHDEPLOY_BENCH_RUNS"] ?? "") ?? 5
        let fixture = try GradleFixture()
        let root = fixture.scratch
        // Both sides use the Gradle daemon on purpose; it goes when the bench ends.
        defer { _ = try? Integration.run("/usr/bin/gradle", ["--stop"]) }
        let git = { (directory: String, arguments: [String]) async throws in
            _ = try await fixture.shell(["git", "-C", directory, "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"] + arguments)
        }
        try await git(fixture.checkout, ["init", "-q", "-b", "main"])
        try await git(fixture.checkout, ["add", "-A"])
        try await git(fixture.checkout, ["commit", "-q", "-m", "demo app"])
        _ = try await fixture.shell(["git", "clone", "-q", "--bare", fixture.checkout, "\(root)/origin.git"])
        _ = try await fixture.shell(["git", "clone", "-q", "\(root)/origin.git", "\(root)/classic"])
        let builder = fixture.builder()
        let build = BuildConfig(command: ["gradle", "--offline", "bootJar"], version: "1.0.1-SNAPSHOT-{timestamp}", timeout: .seconds(600))
        let request = BuildRequest(app: "demo", checkoutPath: "\(root)/repos-demo", commit: GradleFixture.commit, build: build, deploymentID: 1)
        let runner = SubprocessCommandRunner()
        // The classic script twice: on a warm daemon (a deploy within Gradle's 3-hour idle timeout of the last one)
        // and cold (`--no-daemon`: the first deploy of the day, or a script that disables the daemon).
        let classic = { (daemon: Bool) async throws -> Double in
            let started = ContinuousClock.now
            try await git("\(root)/classic", ["pull", "-q", "--ff-only"])
            let gradle = Command(["gradle", "--offline"] + (daemon ? [] : ["--no-daemon"]) + ["clean", "bootJar"], workingDirectory: "\(root)/classic")
            try await runner.run(gradle, log: nil, timeout: .seconds(600)).checked(gradle)
            return (ContinuousClock.now - started).seconds
        }
        let fetcher = GitSourceFetcher()
        let fetchRequest = FetchRequest(app: "demo", repository: RepositoryConfig(url: "\(root)/origin.git", branch: "main"),
                                        checkoutPath: request.checkoutPath)
        let pushdeploy = { () async throws -> (total: Double, fetch: Double) in
            let started = ContinuousClock.now
            // What a deployment does: libgit2 fetch + force checkout of the branch head, then the build and the store.
            let source = try await fetcher.fetch(fetchRequest, log: MemoryDeploymentLog())
            let fetched = (ContinuousClock.now - started).seconds
            var request = request
            request.commit = source.commit
            _ = try await builder.build(request, log: MemoryDeploymentLog())
            return ((ContinuousClock.now - started).seconds, fetched)
        }
        // Warm-up, not measured: both sides start with a warm daemon and a built tree.
        _ = try await classic(true)
        _ = try await pushdeploy()
        var ours: [Double] = [], fetches: [Double] = [], theirs: [Double] = [], cold: [Double] = []
        for run in 1 ... runs {
            try "// bench change \(run)\n".appendLine(toFile: "\(fixture.checkout)/src/main/java/demo/DemoApp.java")
            try await git(fixture.checkout, ["commit", "-q", "-am", "bench change \(run)"])
            try await git(fixture.checkout, ["push", "-q", "\(root)/origin.git", "main"])
            // Alternate which goes first, so neither always gets the warmer caches.
            if run % 2 == 0 { theirs.append(try await classic(true)) }
            let measured = try await pushdeploy()
            ours.append(measured.total)
            fetches.append(measured.fetch)
            if run % 2 == 1 { theirs.append(try await classic(true)) }
            try await git("\(root)/classic", ["reset", "-q", "--hard", "HEAD~1"])
            cold.append(try await classic(false))
        }
        let median = { (values: [Double]) in values.sorted()[values.count / 2] }
        let seconds = { (value: Double) in String(format: "%.2f", value) }
        let ratio = { (other: [Double]) in String(format: "%.2fx", median(ours) / median(other)) }
        let report = """
            push-to-artifact: \(runs) pushes of a one-line change to examples/demo-app, push received -> release stored
              pushdeploy          median \(seconds(median(ours))) s  runs \(ours.map(seconds).joined(separator: " "))
                                  (libgit2 fetch+checkout \(seconds(median(fetches))) s; then
                                   incremental `gradle --offline bootJar` on the warm daemon + version init script; jar copy, sha256, release.json)
              classic, cold       median \(seconds(median(cold))) s  runs \(cold.map(seconds).joined(separator: " "))
                                  (git pull && gradle --offline --no-daemon clean bootJar)
              classic, warm       median \(seconds(median(theirs))) s  runs \(theirs.map(seconds).joined(separator: " "))
                                  (git pull && gradle --offline clean bootJar, daemon already running)
              ratio vs cold       \(ratio(cold))  (target <= 0.50x: \(median(ours) / median(cold) <= 0.5 ? "met" : "NOT met"))
              ratio vs warm       \(ratio(theirs))  (target <= 0.50x: \(median(ours) / median(theirs) <= 0.5 ? "met" : "NOT met"); the script as written, Gradle's daemon on by default)

            """
        print(report)
        if let output = environment["PUSHDEPLOY_BENCH_OUT"] { try report.write(toFile: output, atomically: true, encoding: .utf8) }
    }
}

/// A scratch copy of `examples/demo-app` and a release store beside it.
private struct GradleFixture {
    static let commit = "0123456789abcdef0123456789abcdef01234567"
    static let gradleAvailable = ["gradle", "java", "unzip", "curl"].allSatisfy { tool in
        (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").contains {
            FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)")
        }
    }

    /// `examples/demo-app` in the repository (found through this file, symlinks resolved).
    static let demoApp: String = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("examples/demo-app").path

    let scratch: String
    let checkout: String
    let store: FileReleaseStore
    private let cleanup: Cleanup

    init() throws {
        scratch = NSTemporaryDirectory() + "pushdeploy-gradle-\(UUID().uuidString.prefix(8))"
        checkout = "\(scratch)/checkout"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.demoApp, toPath: checkout)
        for leftover in ["build", ".gradle"] { try? FileManager.default.removeItem(atPath: "\(checkout)/\(leftover)") }
        store = FileReleaseStore(root: "\(scratch)/state/releases")
        cleanup = Cleanup(path: scratch)
    }

    func builder() -> GradleBuilder {
        GradleBuilder(store: store, runner: SubprocessCommandRunner(gracePeriod: .seconds(2)), scratchDirectory: scratch)
    }

    // No daemon: a test leaves no Gradle JVM behind (the bench, which wants a warm daemon, stops its own).
    func request(_ build: BuildConfig = BuildConfig(command: ["gradle", "--offline", "--no-daemon", "bootJar"],
                                                    version: "1.0.1-SNAPSHOT-{timestamp}", timeout: .seconds(300))) -> BuildRequest {
        BuildRequest(app: "demo", checkoutPath: checkout, commit: Self.commit, build: build, deploymentID: 7)
    }

    /// The folders under `releases/demo`, hidden ones included, sorted.
    func storedFolders() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(store.root)/demo")) ?? []).sorted()
    }

    /// Live processes running in the checkout or naming it, after a moment to let them go.
    func processesInCheckout() async throws -> [String] {
        var found: [String] = []
        for _ in 0 ..< 30 {
            found = LiveProcesses.all().filter { $0.workingDirectory?.hasPrefix(checkout) == true || $0.commandLine.contains(checkout) }
                .map { "\($0.pid) \($0.commandLine)" }
            if found.isEmpty { return [] }
            try await Task.sleep(for: .milliseconds(200))
        }
        return found
    }

    /// Runs a tool and returns its output lines.
    func shell(_ arguments: [String]) async throws -> [String] {
        let runner = SubprocessCommandRunner(tailLines: 1000)
        return try await runner.run(Command(arguments), log: nil, timeout: .seconds(30)).checked(Command(arguments)).outputTail
    }

    /// Removes the scratch folder when the last copy of the fixture goes.
    private final class Cleanup: Sendable {
        let path: String
        init(path: String) { self.path = path }
        deinit { try? FileManager.default.removeItem(atPath: path) }
    }
}

/// `java -jar` on a free port, stopped with SIGTERM (and SIGKILL if need be) when the test ends.
private final class DemoAppProcess: Sendable {
    let port: Int
    private let process: Process

    init(jar: String, arguments: [String] = []) throws {
        port = Integration.freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["java", "-jar", jar, "--server.port=\(port)"] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
    }

    /// GET a path, retrying while the app starts (up to 30 s).
    func get(_ path: String) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(30)
        let runner = SubprocessCommandRunner(tailLines: 100)
        while true {
            let command = Command(["curl", "-sS", "--fail", "--max-time", "2", "http://127.0.0.1:\(port)\(path)"])
            let result = try await runner.run(command, log: nil, timeout: .seconds(5))
            if result.status.isSuccess { return result.outputTail.joined(separator: "\n") + (path == "/" ? "\n" : "") }
            guard ContinuousClock.now < deadline, process.isRunning else {
                throw CommandError.failed(command: command.description, status: result.status, outputTail: result.outputTail)
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        for _ in 0 ..< 100 where process.isRunning { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }
}

/// The processes in `/proc` that are not zombies.
private enum LiveProcesses {
    struct Entry {
        var pid: Int32
        var commandLine: String
        var workingDirectory: String?
    }

    static func all() -> [Entry] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { name -> Entry? in
            guard let pid = Int32(name),
                  let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")"),
                  let state = stat[close...].dropFirst(2).first, state != "Z", state != "X" else { return nil }
            let raw = FileManager.default.contents(atPath: "/proc/\(name)/cmdline") ?? Data()
            let commandLine = String(decoding: raw.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            let directory = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(name)/cwd")
            return Entry(pid: pid, commandLine: commandLine, workingDirectory: directory)
        }
    }
}

private extension String {
    /// Appends this text to a file.
    func appendLine(toFile path: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(utf8))
    }
}
