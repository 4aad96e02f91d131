import Foundation
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import PushDeploy

/// `ProcessAppSupervisor` with real processes: the demo app's jar, and bash for the awkward cases.
@Suite(.serialized)
struct ProcessAppSupervisorTests {
    @Test("starts the demo app detached in its own session, healthy and running; SIGTERM stops it well within stop_timeout")
    func startHealthyStop() async throws {
        let lab = try SupervisorLab()
        defer { lab.tearDown() }
        let release = try await lab.demoRelease("1.0.0-t1")
        let app = lab.app(command: SupervisorLab.demoCommand, stopTimeout: .seconds(10))
        let port = Integration.freePort()
        let log = MemoryDeploymentLog()
        let instance = try await lab.start(release, app: app, port: port, slot: "blue", log: log)

        #expect(instance.port == port && instance.slot == "blue" && instance.version == "1.0.0-t1")
        #expect(instance.logPath == "\(lab.directory)/apps/demo/logs/\(port).log")
        let pid = try #require(instance.pid)
        #expect(SupervisorLab.sessionAndGroup(of: pid) == [pid, pid])
        try await HTTPHealthChecker().waitUntilHealthy(port: port, health: lab.health, log: log) {
            await lab.supervisor.isRunning(instance)
        }
        #expect(await lab.supervisor.isRunning(instance))
        let root = try await HTTPProbe.get(host: "127.0.0.1", port: port, path: "/", timeout: .seconds(2))
        #expect(root.status == 200 && root.body == "demo-app 1.0.0-t1\n")

        let clock = ContinuousClock()
        let stopped = try await clock.measure { try await lab.supervisor.stop(instance, app: app, log: log) }
        #expect(stopped < .seconds(5))
        #expect(await !lab.supervisor.isRunning(instance))
        #expect(log.text.contains("SIGTERM") && log.text.contains("(exit code 143)"), "\(log.text)")
        #expect(!log.text.contains("SIGKILL"))
        let appLog = try String(contentsOfFile: try #require(instance.logPath), encoding: .utf8)
        #expect(appLog.contains("pushdeploy: starting 1.0.0-t1 (blue) on port \(port)"))
        #expect(appLog.contains("Started demo-app 1.0.0-t1"))
        #expect(appLog.contains("pushdeploy: stopped 1.0.0-t1"))
        // Stopping what is already stopped is not an error.
        try await lab.supervisor.stop(instance, app: app, log: log)
    }

    @Test("a process that ignores SIGTERM is killed with SIGKILL after stop_timeout")
    func killAfterTimeout() async throws {
        let lab = try SupervisorLab()
        defer { lab.tearDown() }
        let app = lab.app(command: ["bash", "-c", "trap '' TERM; echo ignoring TERM; exec sleep 1000", "{port}"],
                          stopTimeout: .milliseconds(600))
        let log = MemoryDeploymentLog()
        let instance = try await lab.start(try lab.plainRelease("1.0.0-t2"), app: app, port: Integration.freePort(), slot: "green", log: log)
        #expect(await lab.supervisor.isRunning(instance))

        let stopped = try await ContinuousClock().measure { try await lab.supervisor.stop(instance, app: app, log: log) }
        #expect(stopped >= .milliseconds(600) && stopped < .seconds(4))
        #expect(await !lab.supervisor.isRunning(instance))
        #expect(log.text.contains("still running after 600ms: SIGKILL"))
        let appLog = try String(contentsOfFile: try #require(instance.logPath), encoding: .utf8)
        #expect(appLog.contains("ignoring TERM") && appLog.contains("SIGKILL"))
    }

    @Test("placeholders, environment, working directory, stdin and descriptors as the app should see them")
    func launchEnvironment() async throws {
        let lab = try SupervisorLab()
        defer { lab.tearDown() }
        // A descriptor pushdeploy holds without O_CLOEXEC must not leak into a process that lives for weeks.
        let leaky = open("/dev/null", O_RDONLY)
        defer { close(leaky) }
        let script = """
        echo "args=$0|$1|$2|$3 port=$PORT version=$DEPLOY_VERSION slot=$DEPLOY_SLOT commit=$DEPLOY_COMMIT greeting=$GREETING"
        echo "cwd=$(pwd) stdin=$(readlink /proc/$$/fd/0)"
        if [ -e /proc/$$/fd/\(leaky) ]; then echo "fd \(leaky) leaked"; else echo "fd \(leaky) closed"; fi
        exec sleep 1000
        """
        var app = lab.app(command: ["bash", "-c", script, "{jar}", "{port}", "{slot}", "{release_dir}"])
        app.run.env = ["GREETING": "hello {slot}"]
        let release = try lab.plainRelease("1.0.0-t3")
        let port = Integration.freePort()
        let instance = try await lab.start(release, app: app, port: port, slot: "blue", log: MemoryDeploymentLog())
        let folder = lab.releases.directory(app: "demo", version: "1.0.0-t3")
        let appLog = try await lab.waitForLog(instance, containing: "fd \(leaky)")
        #expect(appLog.contains("args=\(folder)/app.jar|\(port)|blue|\(folder) port=\(port) version=1.0.0-t3 slot=blue commit=\(release.commit) greeting=hello blue"))
        #expect(appLog.contains("cwd=\(folder) stdin=/dev/null"))
        #expect(appLog.contains("fd \(leaky) closed"))
        // SIGTERM reaches the app whatever pushdeploy's own signal handling does: neither blocked nor ignored.
        let status = try String(contentsOfFile: "/proc/\(instance.pid!)/status", encoding: .utf8)
        for mask in ["SigBlk", "SigIgn"] {
            let line = status.split(separator: "\n").first { $0.hasPrefix(mask + ":") }
            let bits = line.flatMap { UInt64($0.split(separator: "\t").last ?? "", radix: 16) }
            #expect(bits.map { $0 & (1 << (UInt64(SIGTERM) - 1)) } == 0, "\(mask) of the app")
        }
    }

    @Test("a process that exits at once is reported with its exit status and the last lines of its log")
    func exitsAtOnce() async throws {
        let lab = try SupervisorLab()
        defer { lab.tearDown() }
        let app = lab.app(command: ["bash", "-c", "echo 'Error: Unable to access jarfile' >&2; exit 3"])
        let port = Integration.freePort()
        let error = await #expect(throws: InstanceError.self) {
            try await lab.start(try lab.plainRelease("1.0.0-t4"), app: app, port: port, slot: "blue", log: MemoryDeploymentLog())
        }
        guard case let .exitedAtOnce(errorPort, status, logPath, tail) = error else {
            Issue.record("expected exitedAtOnce, got \(String(describing: error))")
            return
        }
        #expect(errorPort == port && status == .exited(3) && logPath.hasSuffix("/logs/\(port).log"))
        #expect(tail.last == "Error: Unable to access jarfile")
        #expect(error?.description.contains("exited at once with exit code 3") == true)

        let missing = lab.app(command: ["/no/such/program"])
        await #expect(throws: InstanceError.launchFailed(command: "/no/such/program", port: port, reason: "No such file or directory")) {
            try await lab.start(try lab.plainRelease("1.0.0-t5"), app: missing, port: port, slot: "blue", log: MemoryDeploymentLog())
        }
    }

    @Test("a start on a port that is taken, or of a release that is gone, fails before anything runs")
    func refusedStarts() async throws {
        let lab = try SupervisorLab()
        defer { lab.tearDown() }
        let listener = try SupervisorLab.Listener()
        let app = lab.app(command: ["bash", "-c", "exec sleep 1000"])
        await #expect(throws: InstanceError.portInUse(port: listener.port)) {
            try await lab.start(try lab.plainRelease("1.0.0-t6"), app: app, port: listener.port, slot: "blue", log: MemoryDeploymentLog())
        }
        let gone = Release(app: "demo", version: "9.9.9", commit: "c", builtAt: Date(), buildSeconds: 0, sha256: "")
        await #expect(throws: InstanceError.releaseMissing(version: "9.9.9", path: lab.releases.jarPath(app: "demo", version: "9.9.9"))) {
            try await lab.start(gone, app: app, port: Integration.freePort(), slot: "blue", log: MemoryDeploymentLog())
        }
    }

    @Test("a cancelled start kills its process and says so with the log")
    func cancelledStart() async throws {
        let lab = try SupervisorLab()
        defer { lab.tearDown() }
        var supervisor = lab.supervisor
        supervisor.exitWatch = .seconds(30)
        let marker = "pushdeploy-cancel-\(UUID().uuidString)"
        let app = lab.app(command: ["bash", "-c", "echo waiting; exec sleep 1000", marker])
        let release = try lab.plainRelease("1.0.0-t7")
        let task = Task { try await supervisor.start(release, app: app, port: Integration.freePort(), slot: "blue", log: MemoryDeploymentLog()) }
        try await Task.sleep(for: .milliseconds(300))
        task.cancel()
        let result = await task.result
        guard case let .failure(error as InstanceError) = result, case let .cancelled(_, _, tail) = error else {
            Issue.record("expected InstanceError.cancelled, got \(result)")
            return
        }
        #expect(tail.contains("waiting"))
        #expect(SupervisorLab.processes(withArgument: marker).isEmpty)
    }

    @Test("an instance outlives the task that started it, and re-adoption keeps only live processes that are ours")
    func survivesAndReadopts() async throws {
        let lab = try SupervisorLab()
        defer { lab.tearDown() }
        let app = lab.app(command: ["bash", "-c", "exec sleep 1000"])
        let supervisor = lab.supervisor
        let release = try lab.plainRelease("1.0.0-t8")
        let survivor = try await Task.detached {
            try await supervisor.start(release, app: app, port: Integration.freePort(), slot: "blue", log: MemoryDeploymentLog())
        }.value
        lab.track(survivor)
        let stopped = try await lab.start(release, app: app, port: Integration.freePort(), slot: "green", log: MemoryDeploymentLog())
        try await supervisor.stop(stopped, app: app, log: MemoryDeploymentLog())
        // Exits on its own after start returned: a zombie child until isRunning reaps it.
        let quitter = try await lab.start(release, app: lab.app(command: ["bash", "-c", "sleep 0.4; exit 0"]), port: Integration.freePort(),
                                          slot: "blue", log: MemoryDeploymentLog())
        try await Task.sleep(for: .seconds(1))
        var impostor = survivor
        impostor.processStartTicks = survivor.processStartTicks.map { $0 + 1 }
        var unverifiable = survivor
        unverifiable.processStartTicks = nil

        #expect(await supervisor.isRunning(survivor))
        #expect(SupervisorLab.sessionAndGroup(of: survivor.pid!) == [survivor.pid!, survivor.pid!])
        let adopted = await supervisor.adopt([survivor, stopped, quitter, impostor, unverifiable])
        #expect(adopted == [survivor])
        #expect(ProcStat(pid: quitter.pid!) == nil)  // reaped, not left a zombie
        // Stopping an impostor must not touch the process that really has the pid.
        try await supervisor.stop(impostor, app: app, log: MemoryDeploymentLog())
        #expect(await supervisor.isRunning(survivor))
    }

    @Test("/proc/<pid>/stat is read after the last parenthesis")
    func statParsing() {
        let line = "4242 (java (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 30 0 987654 123 456\n"
        let stat = ProcStat(parsing: line)
        #expect(stat?.state == "S" && stat?.startTicks == 987_654)
        #expect(ProcStat(parsing: "1 (zombie) Z 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0")?.isDead == true)
        #expect(ProcStat(parsing: "garbage") == nil)
    }
}

/// `SystemdAppSupervisor` against a scripted `systemctl`: the environment file and the exact commands.
struct SystemdAppSupervisorTests {
    @Test("writes the unit's environment file, then restarts, checks and stops pushdeploy-app@<port>.service")
    func unitCommands() async throws {
        let lab = try SupervisorLab()
        defer { lab.tearDown() }
        let runner = MemoryCommandRunner()
        let supervisor = SystemdAppSupervisor(stateDirectory: lab.directory, releases: lab.releases, runner: runner)
        var app = lab.app(command: ["java", "-Xshare:auto", "-jar", "{jar}", "--server.port={port}", "--spring.profiles.active={slot}"])
        app.run.env = ["JAVA_OPTS": "-Xmx512m", "GREETING": #"say "hi" $HOME"#]
        let release = try lab.plainRelease("3.0.0")
        let log = MemoryDeploymentLog()
        let instance = try await supervisor.start(release, app: app, port: 8081, slot: "blue", log: log)
        #expect(instance.pid == nil && instance.version == "3.0.0" && instance.slot == "blue")
        let file = try String(contentsOfFile: lab.directory + "/units/8081.env", encoding: .utf8)
        #expect(file == """
            # Written by pushdeploy; replaced at every start of this port's unit.
            APP_JAR="\(lab.releases.jarPath(app: "demo", version: "3.0.0"))"
            JAVA_OPTS="-Xshare:auto -Xmx512m"
            APP_ARGS="--spring.profiles.active=blue"
            DEPLOY_APP="demo"
            DEPLOY_COMMIT="\(release.commit)"
            DEPLOY_SLOT="blue"
            DEPLOY_VERSION="3.0.0"
            GREETING="say \\"hi\\" \\$HOME"
            PORT="8081"

            """)
        #expect(await supervisor.isRunning(instance))
        var older = instance
        older.version = "2.0.0"
        #expect(await !supervisor.isRunning(older))
        try await supervisor.stop(older, app: app, log: log)  // the unit runs 3.0.0 now: left alone
        try await supervisor.stop(instance, app: app, log: log)
        #expect(await runner.commands.map(\.arguments) == [
            ["systemctl", "restart", "pushdeploy-app@8081.service"],
            ["systemctl", "is-active", "--quiet", "pushdeploy-app@8081.service"],
            ["systemctl", "stop", "pushdeploy-app@8081.service"],
        ])
        #expect(log.text.contains("pushdeploy-app@8081.service now runs 3.0.0, not 2.0.0: left running"))
    }

    @Test("run commands the unit cannot express are refused, and a failing systemctl is reported with its output")
    func refusals() async throws {
        let lab = try SupervisorLab()
        defer { lab.tearDown() }
        let runner = MemoryCommandRunner { _ in .init(status: .exited(1), output: ["Job for pushdeploy-app@8082.service failed."]) }
        let supervisor = SystemdAppSupervisor(stateDirectory: lab.directory, releases: lab.releases, runner: runner)
        let release = try lab.plainRelease("3.0.1")
        for command in [["bash", "-c", "exec sleep 1"], ["java", "-cp", "{jar}", "demo.DemoApp"], ["java", "-jar", "{jar}", "--motto=two words"]] {
            await #expect(throws: InstanceError.self) {
                try await supervisor.start(release, app: lab.app(command: command), port: 8082, slot: "green", log: MemoryDeploymentLog())
            }
        }
        await #expect(throws: InstanceError.systemctlFailed(command: "systemctl restart pushdeploy-app@8082.service", status: .exited(1),
                                                            outputTail: ["Job for pushdeploy-app@8082.service failed."])) {
            try await supervisor.start(release, app: lab.app(command: ["java", "-jar", "{jar}"]), port: 8082, slot: "green", log: MemoryDeploymentLog())
        }
        #expect(await runner.commands.count == 1)
    }
}

/// A state folder with stored releases and a supervisor; every process a test starts is killed at the end.
final class SupervisorLab: Sendable {
    let directory: String
    let releases: FileReleaseStore
    let supervisor: ProcessAppSupervisor
    private let started = Mutex<[Int32]>([])

    static let demoCommand = ["/usr/bin/java", "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-Ddemo.version={version}", "-jar", "{jar}",
                              "--server.port={port}", "--shutdown-grace=2s"]

    init() throws {
        directory = NSTemporaryDirectory() + "pushdeploy-supervisor-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        releases = FileReleaseStore(stateDirectory: directory)
        supervisor = ProcessAppSupervisor(stateDirectory: directory, releases: releases)
    }

    var health: HealthConfig {
        HealthConfig(path: "/actuator/health", expectStatus: 200, expectBody: "UP", interval: .milliseconds(100), startupTimeout: .seconds(60))
    }

    func app(command: [String], stopTimeout: Duration = .seconds(5), health: HealthConfig? = nil) -> AppConfig {
        AppConfig(name: "demo", repository: RepositoryConfig(url: directory + "/unused"), webhooks: WebhookSecrets(), build: BuildConfig(),
                  run: RunConfig(command: command, stopTimeout: stopTimeout), strategy: .blueGreen(blue: 1, green: 2),
                  health: health ?? self.health, watch: .zero, keepPreviousWarm: true, nginx: nil, keepReleases: 5, hooks: LifecycleHooks())
    }

    /// The demo app's jar stored as release `version`.
    func demoRelease(_ version: String) async throws -> Release {
        try await store(version, jar: try await DemoJar.shared.path())
    }

    /// A release whose jar is an empty file, for run commands that do not need one.
    func plainRelease(_ version: String) throws -> Release {
        let jar = directory + "/plain.jar"
        _ = FileManager.default.createFile(atPath: jar, contents: Data())
        let release = Release(app: "demo", version: version, commit: String(repeating: "a", count: 40), builtAt: Date(), buildSeconds: 0, sha256: "")
        _ = try releases.reserve(app: "demo", version: version)
        try releases.store(release, jarAt: jar)
        return release
    }

    private func store(_ version: String, jar: String) async throws -> Release {
        let release = Release(app: "demo", version: version, commit: String(repeating: "c", count: 40), builtAt: Date(), buildSeconds: 1, sha256: "")
        _ = try releases.reserve(app: "demo", version: version)
        try releases.store(release, jarAt: jar)
        return release
    }

    /// Starts through the lab's supervisor and remembers the process for `tearDown`.
    func start(_ release: Release, app: AppConfig, port: Int, slot: String, log: any DeploymentLog) async throws -> Instance {
        let instance = try await supervisor.start(release, app: app, port: port, slot: slot, log: log)
        track(instance)
        return instance
    }

    func track(_ instance: Instance) {
        if let pid = instance.pid { started.withLock { $0.append(pid) } }
    }

    /// Waits up to 10 s for the instance's log to contain `text`, and returns the log.
    func waitForLog(_ instance: Instance, containing text: String) async throws -> String {
        for _ in 0..<200 {
            let log = (try? String(contentsOfFile: instance.logPath ?? "", encoding: .utf8)) ?? ""
            if log.contains(text) { return log }
            try await Task.sleep(for: .milliseconds(50))
        }
        return (try? String(contentsOfFile: instance.logPath ?? "", encoding: .utf8)) ?? ""
    }

    /// Kills every process group the lab started (they are session leaders, so no stranger shares the id) and removes the folder.
    func tearDown() {
        for pid in started.withLock({ $0 }) {
            kill(-pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Session id and process group id of `pid` (fields 6 and 5 of `/proc/<pid>/stat`).
    static func sessionAndGroup(of pid: Int32) -> [Int32] {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = text.lastIndex(of: ")") else { return [] }
        let fields = text[text.index(after: close)...].split(separator: " ")
        return [Int32(fields[3]) ?? -1, Int32(fields[2]) ?? -1]
    }

    /// The pids of live processes with `argument` on their command line.
    static func processes(withArgument argument: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let stat = ProcStat(pid: pid), !stat.isDead,
                  let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return data.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == argument }
        }
    }

    /// A loopback socket that listens and never answers, to hold a port.
    final class Listener: Sendable {
        let fd: Int32
        let port: Int

        init() throws {
            (fd, port) = try Integration.listeningSocket()
        }

        deinit { close(fd) }
    }
}
