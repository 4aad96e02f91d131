import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import PushDeploy
import PushDeployServer

/// `pushdeploy demo`: the whole loop on one machine, from a git repository to a release behind nginx.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a local demo: a git repository of examples/demo-app, a private nginx, the server, a first deployment.",
        discussion: """
        Makes a work folder with a git repository of examples/demo-app, a private nginx on a loopback port and a \
        pushdeploy.yml; runs the server in this process, deploys the repository's head (fetch with libgit2, build \
        with Gradle, blue-green rollout through nginx), checks that nginx serves the new version, and prints the \
        commands to try next. Ctrl-C (or SIGTERM) stops the server, both app slots, nginx and the demo's Gradle \
        daemon; the work folder stays for a look and is replaced by the next run.

        When stdin is not a terminal, or with --exit-after-first-deploy, the demo stops everything and exits after \
        the first deployment: status 0 when nginx served the new version.
        """
    )

    @Option(help: "The work folder, replaced at every run (default: $TMPDIR/pushdeploy-demo, or /tmp/pushdeploy-demo).")
    var dir: String?

    @Option(help: "The demo app's sources (default: examples/demo-app, found from the current folder or the executable's).")
    var source: String?

    @Option(help: "pushdeploy's port (default: a free loopback port).")
    var port: Int?

    @Option(help: "nginx's port (default: a free loopback port).")
    var nginxPort: Int?

    @Option(help: "The blue slot's port (default: a free loopback port).")
    var bluePort: Int?

    @Option(help: "The green slot's port (default: a free loopback port).")
    var greenPort: Int?

    @Flag(name: [.customLong("exit-after-first-deploy"), .customLong("no-wait")],
          help: "Stop everything and exit once the first deployment is served (for CI and tests).")
    var exitAfterFirstDeploy = false

    @Flag(help: "Keep running until Ctrl-C or SIGTERM even when stdin is not a terminal.")
    var stay = false

    func validate() throws {
        if exitAfterFirstDeploy && stay { throw ValidationError("--exit-after-first-deploy and --stay contradict each other") }
        let ports = [port, nginxPort, bluePort, greenPort].compactMap { $0 }
        if ports.contains(where: { !(1...65535).contains($0) }) { throw ValidationError("ports are 1 to 65535") }
        if Set(ports).count != ports.count { throw ValidationError("the ports must all differ") }
    }

    func run() async throws {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        var logger = Logger(label: "pushdeploy")
        // The terminal is for the demo's own lines; the server speaks only of trouble (LOG_LEVEL=info for more).
        logger.logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        let interactive = stay || (!exitAfterFirstDeploy && isatty(STDIN_FILENO) == 1)
        var ending: DemoRun.Ending = .finished
        try await runReporting {
            let setup = try makeSetup()
            let run = DemoRun(setup: setup, interactive: interactive, executable: Self.executablePath(), logger: logger)
            ending = try await run.run()
        }
        switch ending {
        case .finished, .stoppedAfterReady: return
        case .interrupted:
            say("==> interrupted before the first deployment was served")
            throw ExitCode(130)
        }
    }

    /// The folder, the ports and the programs for this run.
    private func makeSetup() throws -> DemoSetup {
        let environment = ProcessInfo.processInfo.environment
        let search = (environment["PATH"] ?? "/usr/bin:/bin") + ":/usr/sbin:/sbin:/usr/local/sbin"
        let missing = ["gradle", "java", "nginx"].filter { ToolCheck.find($0, path: search) == nil }
        guard missing.isEmpty else {
            throw CLIError("\(missing.joined(separator: ", ")) not found: install them first (`make deps` does, with apt)")
        }
        let nginx = ToolCheck.find("nginx", path: search) ?? "nginx"
        let chosen = [port, nginxPort, bluePort, greenPort].compactMap { $0 }
        var fresh = try DemoSetup.freeLoopbackPorts(8).filter { !chosen.contains($0) }.makeIterator()
        // NSTemporaryDirectory() is $TMPDIR, or /tmp without it.
        let folder = dir ?? URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("pushdeploy-demo").path
        return DemoSetup(directory: Self.absolute(folder), source: try sourceFolder(),
                         serverPort: port ?? fresh.next()!, nginxPort: nginxPort ?? fresh.next()!,
                         slots: (blue: bluePort ?? fresh.next()!, green: greenPort ?? fresh.next()!), nginx: nginx)
    }

    /// `--source`, or `examples/demo-app` above the current folder or above the executable.
    private func sourceFolder() throws -> String {
        if let source { return Self.absolute(source) }
        let executable = URL(fileURLWithPath: Self.executablePath()).resolvingSymlinksInPath().deletingLastPathComponent().path
        for start in [FileManager.default.currentDirectoryPath, executable] {
            var folder = URL(fileURLWithPath: start)
            for _ in 0..<6 {
                let candidate = folder.appendingPathComponent("examples/demo-app").path
                if FileManager.default.fileExists(atPath: candidate + "/build.gradle") { return candidate }
                folder.deleteLastPathComponent()
            }
        }
        throw CLIError("cannot find examples/demo-app: run from the pushdeploy repository or name it with --source")
    }

    /// How this executable was called, as a path that works from any folder (or the bare name when it came from PATH).
    static func executablePath() -> String {
        let called = CommandLine.arguments[0]
        return called.contains("/") ? absolute(called) : called
    }

    static func absolute(_ path: String) -> String {
        let base = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        return URL(fileURLWithPath: base).standardizedFileURL.path
    }
}

/// One run of the demo: the server and the first deployment side by side, then the teardown, whatever happened.
struct DemoRun: Sendable {
    let setup: DemoSetup
    let interactive: Bool
    let executable: String
    let logger: Logger

    /// How a run ended when it did not fail.
    enum Ending: Sendable {
        /// The first deployment was served and the demo was asked to exit then.
        case finished
        /// Ctrl-C or SIGTERM after the first deployment was served.
        case stoppedAfterReady
        /// Ctrl-C or SIGTERM before that.
        case interrupted
    }

    private enum Finished: Sendable {
        case server(Error?)
        case driver(Error?)
        /// The server's graceful shutdown took too long.
        case timer
    }

    func run() async throws -> Ending {
        if setup.holdsPreviousDemo {
            // A demo that still runs there would lose its app and its nginx under its feet.
            if let previous = try? ConfigLoader().load(path: setup.configPath),
               (try? await get("http://127.0.0.1:\(previous.listen.port)/healthz")) != nil {
                throw CLIError("a demo still runs in \(setup.directory) (port \(previous.listen.port)): stop it with Ctrl-C, or use --dir")
            }
            say("==> \(setup.directory) holds a previous demo: stopping what it left running, then replacing it")
            await setup.stopEverything(log: ConsoleLog())
        }
        let commit = try await setup.prepare()
        printPlan(commit: commit)
        let config: Config
        do {
            config = try ConfigLoader().load(path: setup.configPath)
        } catch {
            throw CLIError("the demo's own config is invalid: \(error.description)")
        }
        let service = DeployService.standard(config: config)
        try await service.open()
        let application = buildApplication(service: service, logger: logger)
        let progress = DemoProgress()

        // The server owns SIGINT and SIGTERM (graceful shutdown); whichever side ends first ends the other.
        let first: Finished = await withTaskGroup(of: Finished.self) { group in
            group.addTask {
                do { try await application.runService() } catch { return .server(error) }
                return .server(nil)
            }
            group.addTask {
                do { try await drive(service: service, progress: progress) } catch { return .driver(error) }
                return .driver(nil)
            }
            let first = await group.next()!
            guard case .driver = first, await progress.serverUp else {
                group.cancelAll()
                while await group.next() != nil {}
                return first
            }
            // Cancelling a Hummingbird server makes it log errors; a graceful shutdown is what Ctrl-C does, and
            // buildApplication hides the service group, so the signal is the one way in. Its handler is installed:
            // the server has answered.
            kill(getpid(), SIGTERM)
            group.addTask {
                try? await Task.sleep(for: .seconds(20))
                return .timer
            }
            while let next = await group.next() {
                if case .timer = next { group.cancelAll() }
                if case .server = next { group.cancelAll() }
            }
            return first
        }
        let ready = await progress.ready

        // A second Ctrl-C must not cut the teardown short and leave JVMs behind.
        signal(SIGINT, SIG_IGN)
        say("==> stopping the app instances, nginx and the demo's Gradle daemon")
        await setup.stopEverything(log: ConsoleLog())
        say("==> stopped; the work folder \(setup.directory) stays (the next run replaces it)")

        switch first {
        case .driver(nil): return .finished
        case .server(nil), .timer: return ready ? .stoppedAfterReady : .interrupted
        case let .server(error?): throw CLIError("the server stopped: \(error)")
        case let .driver(error?):
            if error is CancellationError { return ready ? .stoppedAfterReady : .interrupted }
            throw error
        }
    }

    /// Starts nginx, runs the first deployment, checks it through nginx, then waits (or returns, non-interactive).
    private func drive(service: DeployService, progress: DemoProgress) async throws {
        try await waitForServer()
        await progress.markServerUp()
        say("==> pushdeploy listening on http://127.0.0.1:\(setup.serverPort)")
        let nginxPID = try await setup.startNginx()
        say("==> nginx started (pid \(nginxPID)), listening on 127.0.0.1:\(setup.nginxPort)")

        let trigger = Trigger(source: .manual, ref: "refs/heads/main", pusher: "pushdeploy demo", message: "first deployment")
        let (queued, _) = try await service.deploy(app: "demo", trigger: trigger)
        say("==> deployment \(queued.id): fetch with libgit2, build with Gradle (the first build takes a while), blue-green rollout")
        let deployment = try await follow(queued, history: service.history)
        // Only a shutdown (Ctrl-C, SIGTERM) interrupts a deployment: that is an interruption of the demo, not a failure.
        if deployment.status == .interrupted { throw CancellationError() }
        guard deployment.status == .succeeded, let version = deployment.version else {
            throw CLIError("the first deployment \(deployment.status.rawValue): \(deployment.error ?? "no reason recorded");"
                           + " its log is \(FileDeploymentHistory(stateDirectory: service.config.stateDirectory).logPath(app: "demo", id: deployment.id))")
        }
        let live = try await service.rollbackTargets?.state?.state(app: "demo").live.first
        let seconds = deployment.finishedAt.map { String(format: " in %.1f s", $0.timeIntervalSince(deployment.createdAt)) } ?? ""
        say("==> deployment \(deployment.id) succeeded\(seconds): \(version) is live"
            + (live.map { " on \($0.slot) (port \($0.port))" } ?? ""))

        let body = try await get("http://127.0.0.1:\(setup.nginxPort)/")
        guard body.contains(version) else {
            throw CLIError("nginx on port \(setup.nginxPort) answers '\(body)', not \(version)")
        }
        say("==> through nginx: curl http://127.0.0.1:\(setup.nginxPort)/  ->  \(body)")
        await progress.markReady()
        guard interactive else {
            say("==> the demo works; exiting as asked (run `pushdeploy demo` in a terminal to keep it running and try changes)")
            return
        }
        say(nextSteps(version: version))
        while true { try await Task.sleep(for: .seconds(3600)) }
    }

    /// Prints the deployment's log as it grows, indented, until the deployment ends; returns its final record.
    private func follow(_ deployment: Deployment, history: any DeploymentHistory) async throws -> Deployment {
        var offset = 0
        var pending = Data()
        func printNewLines(all: Bool) async {
            let chunk = await history.readLog(app: deployment.app, id: deployment.id, from: offset)
            offset = chunk.nextOffset
            pending += chunk.data
            var complete = pending
            if !all {
                guard let lastNewline = pending.lastIndex(of: UInt8(ascii: "\n")) else { return }
                complete = pending[pending.startIndex...lastNewline]
            }
            pending = pending.suffix(from: complete.endIndex)
            guard !complete.isEmpty else { return }
            let text = String(decoding: complete, as: UTF8.self)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast(text.hasSuffix("\n") ? 1 : 0)
            say(lines.map { "    " + $0 }.joined(separator: "\n"))
        }
        while true {
            let record = try await history.deployment(app: deployment.app, id: deployment.id) ?? deployment
            await printNewLines(all: record.status.isFinished)
            if record.status.isFinished { return record }
            try await Task.sleep(for: .milliseconds(300))
        }
    }

    /// Waits until the server answers `/healthz`.
    private func waitForServer() async throws {
        for _ in 0..<100 {
            if (try? await get("http://127.0.0.1:\(setup.serverPort)/healthz")) != nil { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw CLIError("pushdeploy does not answer on port \(setup.serverPort)")
    }

    /// GETs a URL and returns the body, trimmed; throws unless the status is 200.
    private func get(_ address: String) async throws -> String {
        let (status, text) = try await HTTPProbe.get(url: address, timeout: .seconds(5))
        let body = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard status == 200 else { throw CLIError("\(address) answered \(status): \(body)") }
        return body
    }

    private func printPlan(commit: String) {
        say("""
        pushdeploy demo
          work folder  \(setup.directory)  (replaced at every run; --dir to choose another)
          repository   \(setup.repository)  (branch main, commit \(commit.prefix(7)))
          pushdeploy   http://127.0.0.1:\(setup.serverPort)  (config \(setup.configPath), token \(setup.tokenPath))
          nginx        http://127.0.0.1:\(setup.nginxPort)/  (private, prefix \(setup.nginxPrefix))
          app slots    blue 127.0.0.1:\(setup.slots.blue), green 127.0.0.1:\(setup.slots.green)
        """)
    }

    private func nextSteps(version: String) -> String {
        let cli = "\(executable.contains(" ") ? "'\(executable)'" : executable)"
        let config = "--config \(setup.configPath)"
        return """

        The demo runs. In another terminal:

          # what nginx serves
          curl http://127.0.0.1:\(setup.nginxPort)/

          # change the app and commit (every build gets a new version, so any change shows)
          cd \(setup.repository)
          echo "// changed $(date)" >> src/main/java/demo/DemoApp.java
          git commit -am "change the demo app"

          # deploy the new head: with curl, as a webhook or a CI job would ...
          curl -X POST -H "Authorization: Bearer $(cat \(setup.tokenPath))" http://127.0.0.1:\(setup.serverPort)/deploy
          # ... or with the CLI, following the log to the end
          \(cli) deploy \(config) --wait

          # what runs, what ran, what a deployment printed
          \(cli) status \(config)
          \(cli) history \(config)
          \(cli) logs \(config)

          # roll back to the previous release (an nginx flip to the warm slot)
          \(cli) rollback \(config) --wait

        Ctrl-C stops pushdeploy, both app slots, nginx and the demo's Gradle daemon.
        """
    }
}

/// Whether the first deployment is served; read once the run ends, to tell Ctrl-C after it from Ctrl-C before.
actor DemoProgress {
    /// The server has answered `/healthz`, so its signal handling is in place.
    private(set) var serverUp = false
    private(set) var ready = false
    func markServerUp() { serverUp = true }
    func markReady() { ready = true }
}

/// Lines of the teardown, printed as they come.
struct ConsoleLog: DeploymentLog {
    func write(_ text: String) {
        FileHandle.standardOutput.write(Data(("    " + text).utf8))
    }
}

/// Writes a line to stdout at once: the deployment log and these lines must not overtake each other in a pipe.
func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}
