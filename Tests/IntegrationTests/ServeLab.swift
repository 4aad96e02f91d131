import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
@testable import PushDeploy

/// A real `pushdeploy serve`: a local git repository of the demo app, Gradle, blue-green slots behind a private nginx.
///
/// Everything it starts (the server, the app instances, nginx) is stopped by ``tearDown()``.
final class ServeLab: Sendable {
    static let toolsPresent = ["/usr/bin/gradle", "/usr/bin/java", "/usr/bin/git", "/usr/bin/curl", "/usr/sbin/nginx"].allSatisfy {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    /// The folder, nginx and slots; the server's state, the repository and the token live in the same folder.
    let site: BlueGreenLab
    let source: String
    let token: String
    let serverPort: Int
    /// Added to the environment of every server this lab starts.
    let serverEnvironment: [String: String]
    let configPath: String
    private let server = Mutex<RunningServer?>(nil)

    var scratch: String { site.folder }
    var slots: (blue: Int, green: Int) { site.slots }
    var nginx: PrivateNginx { site.nginx }

    /// Writes the repository (one commit), the token, the config and nginx's first include (blue), and starts nginx.
    ///
    /// Nothing is left behind when it throws; otherwise the test calls ``tearDown()`` (in a `defer`).
    /// `githubSecret`: accept GitHub webhooks signed with it; `buildCommand`: instead of Gradle; `serverEnvironment`:
    /// added to the server's own environment (as a unit's `Environment=` would).
    init(watch: String = "0s", runExtra: [String] = [], beforeSwitch: [String]? = nil, githubSecret: String? = nil,
         buildCommand: [String]? = nil, serverEnvironment: [String: String] = [:]) throws {
        self.serverEnvironment = serverEnvironment
        let site = try BlueGreenLab("serve")
        self.site = site
        source = site.folder + "/source"
        token = "lab-token-\(UUID().uuidString)"
        serverPort = Integration.freePort()
        configPath = site.folder + "/pushdeploy.yml"
        do {
            try prepare(watch: watch, runExtra: runExtra, beforeSwitch: beforeSwitch, githubSecret: githubSecret, buildCommand: buildCommand)
        } catch {
            site.tearDown()
            throw error
        }
    }

    private func prepare(watch: String, runExtra: [String], beforeSwitch: [String]?, githubSecret: String?, buildCommand: [String]?) throws {
        if let githubSecret { try githubSecret.write(toFile: scratch + "/github_secret", atomically: true, encoding: .utf8) }
        try FileManager.default.copyItem(atPath: Integration.root + "/examples/demo-app", toPath: source)
        try? FileManager.default.removeItem(atPath: source + "/build")
        try? FileManager.default.removeItem(atPath: source + "/.gradle")
        try token.write(toFile: scratch + "/token", atomically: true, encoding: .utf8)
        let quoted = { (list: [String]) in "[" + list.map { "\"\($0)\"" }.joined(separator: ", ") + "]" }
        let run = ["java", "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-jar", "{jar}", "--server.port={port}", "--shutdown-grace=2s"] + runExtra
        let nginxConfig = nginx.nginxConfig
        try """
        listen: 127.0.0.1:\(serverPort)
        state_dir: \(scratch)/state
        token_file: token
        apps:
          demo:
            repository: { url: \(source), branch: main }
        \(githubSecret == nil ? "" : "    webhooks: { github: { secret_file: github_secret } }")
            build:
              command: \(buildCommand.map(quoted) ?? "[gradle, --offline, --no-daemon, -q, bootJar]")
              version: "1.0.1-SNAPSHOT-{timestamp}"
              artifact: build/libs/*.jar
              timeout: 5m
            run:
              command: \(quoted(run))
              stop_timeout: 10s
            strategy: blue-green
            slots: { blue: \(slots.blue), green: \(slots.green) }
            health: { path: /actuator/health, expect_status: 200, expect_body: UP, interval: 100ms, startup_timeout: 60s }
            watch: \(watch)
            nginx:
              include_file: \(nginxConfig.includeFile)
              test: \(quoted(nginxConfig.test))
              reload: \(quoted(nginxConfig.reload))
              verify_url: \(nginxConfig.verifyURL ?? "")
            keep_releases: 5
        \(beforeSwitch.map { "    hooks: { before_switch: \(quoted($0)), timeout: 30s }" } ?? "")
        """.write(toFile: configPath, atomically: true, encoding: .utf8)
        _ = try git(["init", "-q", "-b", "main"])
        _ = try git(["add", "-A"])
        _ = try git(["commit", "-q", "-m", "demo app"])
        // nginx needs its include to start; it points at blue until the first deployment switches.
        try site.startNginx(routedTo: [slots.blue], app: "demo", strategy: .blueGreen(blue: slots.blue, green: slots.green))
    }

    /// Runs git in the source repository and returns its output, trimmed.
    @discardableResult
    func git(_ arguments: [String]) throws -> String {
        let (status, output) = try Integration.run("/usr/bin/git", ["-C", source, "-c", "user.name=t", "-c", "user.email=t@e"] + arguments)
        guard status == 0 else { throw ServerExited(log: "git \(arguments): \(output)") }
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A one-line change, committed; returns the new commit id.
    @discardableResult
    func commitChange(_ note: String) throws -> String {
        let file = source + "/src/main/java/demo/DemoApp.java"
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("// \(note)\n".utf8))
        try handle.close()
        try git(["commit", "-q", "-am", note])
        return try git(["rev-parse", "HEAD"])
    }

    /// Starts `pushdeploy serve` and waits until it answers.
    func startServer() async throws {
        let running = try RunningServer(config: configPath, port: serverPort, logPath: scratch + "/server-\(UUID().uuidString.prefix(6)).log",
                                        environment: serverEnvironment)
        server.withLock { $0 = running }
        try await running.waitUntilReady()
    }

    /// Kills the server without warning (SIGKILL), as a crash or `kill -9` would.
    func killServer() {
        guard let running = server.withLock({ $0 }) else { return }
        kill(running.process.processIdentifier, SIGKILL)
        running.process.waitUntilExit()
        server.withLock { $0 = nil }
    }

    /// Stops the server as systemd or Ctrl-C would (SIGTERM) and returns how long it took to exit (at most 30 s waited).
    func terminateServer() async -> Duration {
        guard let running = server.withLock({ $0 }) else { return .zero }
        let started = ContinuousClock.now
        kill(running.process.processIdentifier, SIGTERM)
        while running.process.isRunning, ContinuousClock.now - started < .seconds(30) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let took = ContinuousClock.now - started
        if running.process.isRunning { kill(running.process.processIdentifier, SIGKILL) }
        running.process.waitUntilExit()
        server.withLock { $0 = nil }
        return took
    }

    /// The server's log so far (every log of this lab's servers).
    var serverLog: String {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: scratch)) ?? []
        return names.filter { $0.hasPrefix("server-") }.sorted()
            .compactMap { try? String(contentsOfFile: scratch + "/" + $0, encoding: .utf8) }.joined(separator: "\n")
    }

    /// Runs the CLI against this lab's server with its token.
    func cli(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try Integration.run(Integration.executable, arguments,
                            environment: ["PUSHDEPLOY_URL": "http://127.0.0.1:\(serverPort)", "PUSHDEPLOY_TOKEN": token])
    }

    /// Queues a deployment through the CLI and returns its id.
    func deploy() throws -> Int {
        let (status, output) = try cli(["deploy", "--json"])
        guard status == 0, let id = Self.deploymentID(in: output) else { throw ServerExited(log: "deploy failed: \(output)") }
        return id
    }

    /// The `"deployment": N` of an accepted answer.
    static func deploymentID(in output: String) -> Int? {
        guard let match = output.firstMatch(of: #/"deployment"\s*:\s*(\d+)/#) else { return nil }
        return Int(match.1)
    }

    /// The deployment's record, read from disk (what the server last wrote).
    func record(_ id: Int) -> Deployment? {
        let path = String(format: "%@/state/deployments/demo/%06d.json", scratch, id)
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder.pushDeploy.decode(Deployment.self, from: data)
    }

    /// Polls the record until `done` says so; throws with the record and the server log at `timeout`.
    @discardableResult
    func waitFor(_ id: Int, timeout: Duration = .seconds(240), _ done: (Deployment) -> Bool) async throws -> Deployment {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let record = record(id), done(record) { return record }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw ServerExited(log: "deployment \(id) did not get there in time: \(String(describing: record(id)))\n\(serverLog)")
    }

    /// `state.json`, as the server last wrote it.
    func appState() -> AppState {
        guard let data = FileManager.default.contents(atPath: scratch + "/state/apps/demo/state.json") else { return AppState() }
        return (try? JSONDecoder.pushDeploy.decode(AppState.self, from: data)) ?? AppState()
    }

    /// The version nginx serves now (`demo-app <version>`), nil when nothing answers 200.
    func servedVersion() -> String? {
        site.servedVersion()
    }

    /// Stops the server and the process group of every app instance it recorded; then the site stops nginx, what
    /// else names the folder (an instance nobody recorded), and removes the folder.
    func tearDown() {
        killServer()
        for entry in appState().entries {
            if let pid = entry.instance.pid { kill(-pid, SIGKILL) }
        }
        site.tearDown()
    }
}

/// Polls nginx in the background and counts every answer that is not a 200 from an expected release.
final class TrafficWatcher: Sendable {
    private struct Counts {
        var requests = 0
        var failures: [String] = []
    }

    private let counts = Mutex(Counts())
    private let stopped = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let port: Int
    private let accepts: @Sendable (Int, String) -> Bool

    /// Starts polling `port` with a new connection per request (`Connection: close`), on a thread of its own.
    init(port: Int, accepts: @escaping @Sendable (Int, String) -> Bool) {
        self.port = port
        self.accepts = accepts
        Thread { [self] in poll() }.start()
    }

    private func poll() {
        while !stopped.load(ordering: .relaxed) {
            let answer = TrafficWatcher.get(port: port)
            let failure: String? = answer.map { status, body in accepts(status, body) ? nil : "\(status) \(body.prefix(80))" } ?? "connection failed"
            counts.withLock { counts in
                counts.requests += 1
                if let failure { counts.failures.append(failure) }
            }
            usleep(20_000)
        }
        finished.signal()
    }

    /// Stops polling and returns how many requests were made and what failed.
    func stop() -> (requests: Int, failures: [String]) {
        if !stopped.exchange(true, ordering: .relaxed) { finished.wait() }
        return counts.withLock { ($0.requests, $0.failures) }
    }

    /// One GET / over a new connection, with a 5 s limit; nil when the connection failed.
    static func get(port: Int) -> (Int, String)? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        let request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        guard request.withCString({ send(fd, $0, strlen($0), 0) }) > 0 else { return nil }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += buffer[0..<count]
        }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let statusLine = text.split(separator: "\r\n").first, let code = statusLine.split(separator: " ").dropFirst().first.flatMap({ Int($0) }),
              let bodyStart = text.range(of: "\r\n\r\n") else { return nil }
        return (code, String(text[bodyStart.upperBound...]))
    }
}
