#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Lays out the local demo: a git repository of the demo app, a private nginx config, a token and a `pushdeploy.yml`.
public struct DemoSetup: Sendable {
    /// The work folder everything goes into (absolute).
    public var directory: String
    /// The demo app's sources (`examples/demo-app`).
    public var source: String
    public var serverPort: Int
    public var nginxPort: Int
    public var slots: (blue: Int, green: Int)
    /// The nginx program: a full path, since `/usr/sbin` is often not on a user's `PATH`.
    public var nginx: String

    public init(directory: String, source: String, serverPort: Int, nginxPort: Int, slots: (blue: Int, green: Int),
                nginx: String = "nginx") {
        self.directory = URL(fileURLWithPath: directory).standardizedFileURL.path
        self.source = URL(fileURLWithPath: source).standardizedFileURL.path
        self.serverPort = serverPort
        self.nginxPort = nginxPort
        self.slots = slots
        self.nginx = nginx
    }

    public var repository: String { directory + "/demo-app" }
    public var configPath: String { directory + "/pushdeploy.yml" }
    public var tokenPath: String { directory + "/token" }
    public var stateDirectory: String { directory + "/state" }
    public var nginxPrefix: String { directory + "/nginx" }
    public var nginxConf: String { nginxPrefix + "/conf/nginx.conf" }
    public var nginxPIDFile: String { nginxPrefix + "/logs/nginx.pid" }
    public var nginxErrorLog: String { nginxPrefix + "/logs/error.log" }
    public var includeFile: String { nginxPrefix + "/conf/demo.inc" }
    /// nginx on the demo's files; `-e` so that a user who is not root gets no alert about the system error log.
    public var nginxCommand: [String] { [nginx, "-p", nginxPrefix, "-e", nginxErrorLog, "-c", nginxConf] }
    /// A Gradle home of the demo's own, so that the daemon it starts is the demo's and `gradle --stop` there ends only it.
    public var gradleHome: String { directory + "/gradle-home" }
    /// Marks a folder as a demo's, so that a rerun may wipe it; a folder without it is never removed.
    public var markerPath: String { directory + "/.pushdeploy-demo" }

    /// Whether `directory` holds a previous demo (whose processes may still run).
    public var holdsPreviousDemo: Bool { FileManager.default.fileExists(atPath: markerPath) }

    /// Writes every file and makes the repository with one commit; returns that commit id.
    ///
    /// An existing folder is replaced only if a previous demo made it, or if it is empty.
    public func prepare() async throws -> String {
        let files = FileManager.default
        var isFolder: ObjCBool = false
        if files.fileExists(atPath: directory, isDirectory: &isFolder) {
            let contents = isFolder.boolValue ? ((try? files.contentsOfDirectory(atPath: directory)) ?? []) : ["?"]
            guard contents.isEmpty || holdsPreviousDemo else {
                throw DemoError("\(directory) exists and was not made by `pushdeploy demo`: choose another folder with --dir")
            }
            try files.removeItem(atPath: directory)
        }
        guard files.fileExists(atPath: source + "/build.gradle") else {
            throw DemoError("\(source) is not the demo app (no build.gradle): name examples/demo-app with --source")
        }
        for folder in [directory, nginxPrefix + "/conf", nginxPrefix + "/logs", nginxPrefix + "/temp", stateDirectory, gradleHome] {
            try AtomicFile.makeDirectory(folder)
        }
        try AtomicFile.write(Data("made by pushdeploy demo; a rerun of the demo replaces this folder\n".utf8), to: markerPath)
        try files.copyItem(atPath: source, toPath: repository)
        for leftover in ["build", ".gradle"] { try? files.removeItem(atPath: repository + "/" + leftover) }
        try AtomicFile.write(Data("build/\n.gradle/\n".utf8), to: repository + "/.gitignore")
        let commit = try await GitRepositoryMaker.initialCommit(at: repository, message: "demo-app: first version")
        // So that `git commit -am` works on a fresh machine, where git knows no user yet.
        let gitConfig = repository + "/.git/config"
        let identity = "[user]\n\tname = pushdeploy demo\n\temail = demo@pushdeploy.invalid\n"
        let existing = files.contents(atPath: gitConfig) ?? Data()
        try AtomicFile.write(existing + Data(identity.utf8), to: gitConfig)

        let token = (0..<4).map { _ in String(UInt64.random(in: 0 ... .max), radix: 16) }.joined()
        try AtomicFile.write(Data((token + "\n").utf8), to: tokenPath)
        chmod(tokenPath, 0o600)
        // nginx needs the include file to start; it points at the blue slot until the first deployment switches.
        let include = try NginxInclude.render([slots.blue], app: "demo", strategy: .blueGreen(blue: slots.blue, green: slots.green))
        try AtomicFile.write(Data(include.utf8), to: includeFile)
        try AtomicFile.write(Data(nginxConfig.utf8), to: nginxConf)
        try AtomicFile.write(Data(pushdeployConfig.utf8), to: configPath)
        return commit
    }

    var nginxConfig: String {
        """
        # The demo's private nginx: pushdeploy rewrites demo.inc and reloads it.
        worker_processes 1;
        pid \(nginxPIDFile);
        error_log \(nginxErrorLog) warn;
        events { worker_connections 512; }
        http {
            access_log off;
            client_body_temp_path \(nginxPrefix)/temp/body;
            proxy_temp_path \(nginxPrefix)/temp/proxy;
            fastcgi_temp_path \(nginxPrefix)/temp/fastcgi;
            uwsgi_temp_path \(nginxPrefix)/temp/uwsgi;
            scgi_temp_path \(nginxPrefix)/temp/scgi;
            server {
                listen 127.0.0.1:\(nginxPort);
                include \(includeFile);
                location / {
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                    # The backend that answered: how pushdeploy proves a switch, whatever the app's pages say.
                    add_header X-Pushdeploy-Upstream $upstream_addr always;
                    # While the live slot cannot answer (its JVM died), the other slot serves: see the include file.
                    error_page 502 504 = @pushdeploy_fallback;
                    proxy_pass $service_url;
                }
            }
        }

        """
    }

    var pushdeployConfig: String {
        let nginx = nginxCommand.map(Self.quoted).joined(separator: ", ")
        return """
        # Written by `pushdeploy demo`: one app, blue-green on two loopback ports behind a private nginx.
        listen: 127.0.0.1:\(serverPort)
        state_dir: state
        token_file: token
        apps:
          demo:
            repository: { url: \(Self.quoted(repository)), branch: main }
            build:
              command: [gradle, --offline, -q, bootJar]
              # The demo's own Gradle home: the daemon stays warm between the demo's builds, and stopping the demo stops it.
              env: { GRADLE_USER_HOME: \(Self.quoted(gradleHome)) }
              version: "1.0.1-SNAPSHOT-{timestamp}"
              artifact: build/libs/*.jar
              timeout: 10m
            run:
              command: [java, -XX:TieredStopAtLevel=1, -jar, "{jar}", "--server.port={port}", "--shutdown-grace=2s"]
              stop_timeout: 5s
            strategy: blue-green
            slots: { blue: \(slots.blue), green: \(slots.green) }
            health: { path: /actuator/health, expect_status: 200, expect_body: UP, interval: 200ms, startup_timeout: 120s }
            watch: 5s
            nginx:
              include_file: \(Self.quoted(includeFile))
              test: [\(nginx), -t, -q]
              reload: [\(nginx), -s, reload]
              verify_url: http://127.0.0.1:\(nginxPort)/
            keep_releases: 5

        """
    }

    /// A YAML double-quoted scalar, so that a folder with spaces or colons stays one value.
    static func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// `count` different loopback ports that nobody listens on right now: each bound to port 0 at once, read, closed.
    public static func freeLoopbackPorts(_ count: Int) throws -> [Int] {
        var sockets: [Int32] = []
        defer { sockets.forEach { close($0) } }
        var ports: [Int] = []
        for _ in 0..<count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw DemoError("cannot open a socket: \(String(cString: strerror(errno)))") }
            sockets.append(fd)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
            }
            guard bound else { throw DemoError("cannot pick a free loopback port: \(String(cString: strerror(errno)))") }
            ports.append(Int(UInt16(bigEndian: address.sin_port)))
        }
        return ports
    }
}

// MARK: - The processes a demo starts and stops

extension DemoSetup {
    /// Starts the private nginx (it daemonizes) and returns its master's pid.
    public func startNginx(runner: any CommandRunner = SubprocessCommandRunner()) async throws -> Int32 {
        let command = Command(nginxCommand, workingDirectory: directory)
        let result = try await runner.run(command, log: nil, timeout: .seconds(30))
        guard result.status.isSuccess else {
            throw DemoError("nginx did not start (\(result.status)): \(result.outputTail.suffix(5).joined(separator: " | "))"
                            + " (see \(nginxErrorLog))")
        }
        for _ in 0..<100 {
            if let pid = nginxPID() { return pid }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw DemoError("nginx started but wrote no pid file \(nginxPIDFile) (see \(nginxErrorLog))")
    }

    /// The pid of this demo's nginx master, if it runs (checked against its command line, so a reused pid is not taken).
    public func nginxPID() -> Int32? {
        guard let text = FileManager.default.contents(atPath: nginxPIDFile),
              let pid = Int32(String(decoding: text, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)),
              pid > 0, kill(pid, 0) == 0 || errno == EPERM,
              let commandLine = ProcFile.read("/proc/\(pid)/cmdline")
        else { return nil }
        return String(decoding: commandLine, as: UTF8.self).contains(nginxPrefix) ? pid : nil
    }

    /// Stops everything a demo in this folder started: the app instances in `state.json`, nginx, the Gradle daemon.
    ///
    /// Works from the files alone, so it also ends what a demo that was killed left running. Never throws: each
    /// part that cannot be stopped is reported on `log` and the rest is still stopped.
    public func stopEverything(runner: any CommandRunner = SubprocessCommandRunner(), log: any DeploymentLog) async {
        await stopInstances(log: log)
        await stopNginx(runner: runner, log: log)
        await stopGradleDaemon(runner: runner, log: log)
    }

    /// Stops every instance recorded for every app (SIGTERM to its process group, `stop_timeout`, SIGKILL) and forgets it.
    func stopInstances(log: any DeploymentLog) async {
        guard FileManager.default.fileExists(atPath: configPath) else { return }
        let config: Config
        do {
            config = try ConfigLoader().load(path: configPath)
        } catch {
            log.line("cannot read \(configPath), so the app instances are not stopped: \(error)")
            return
        }
        let supervisor = RolloutParts.standard(config: config, releases: FileReleaseStore(stateDirectory: config.stateDirectory)).supervisor
        let states = AppStateStore(stateDirectory: config.stateDirectory)
        for app in config.apps {
            let entries: [AppState.Entry]
            do {
                entries = try await states.state(app: app.name).entries
            } catch {
                log.line("cannot read the state of \(app.name): \(error)")
                continue
            }
            // All at once: each may take its whole stop_timeout.
            await withTaskGroup(of: Void.self) { group in
                for entry in entries {
                    group.addTask {
                        do {
                            try await supervisor.stop(entry.instance, app: app, log: log)
                            try await states.update(app: app.name) { $0.remove(port: entry.instance.port) }
                        } catch {
                            log.line("could not stop \(entry.instance.version) on port \(entry.instance.port): \(error)")
                        }
                    }
                }
            }
            // An instance started by a deployment that was stopped before it wrote the instance down.
            for note in await supervisor.stopStrays(app: app, known: [], log: log) { log.line(note) }
        }
    }

    /// `nginx -s quit` (finishes the requests in flight), then SIGTERM and SIGKILL if the master is still there.
    func stopNginx(runner: any CommandRunner, log: any DeploymentLog) async {
        guard let pid = nginxPID() else { return }
        let quit = Command(nginxCommand + ["-s", "quit"], workingDirectory: directory)
        _ = try? await runner.run(quit, log: nil, timeout: .seconds(10))
        for signal in [0, SIGTERM, SIGKILL] {
            if signal != 0 { kill(pid, signal) }
            var waited = 0
            while nginxPID() == pid, waited < 100 {
                try? await Task.sleep(for: .milliseconds(50))
                waited += 1
            }
            if nginxPID() != pid {
                log.line("stopped nginx (pid \(pid))")
                return
            }
        }
        log.line("nginx (pid \(pid)) is still running after SIGKILL")
    }

    /// `gradle --stop` in the demo's own Gradle home: ends the daemon the demo's builds started, and no other.
    ///
    /// `gradle --stop` returns before the daemon's JVM has exited, so this waits for the process, and kills it
    /// if it lingers.
    func stopGradleDaemon(runner: any CommandRunner, log: any DeploymentLog) async {
        let daemons = gradleDaemonPIDs()
        guard !daemons.isEmpty else { return }
        let stop = Command(["gradle", "--stop", "-q"], workingDirectory: directory, environment: ["GRADLE_USER_HOME": gradleHome])
        _ = try? await runner.run(stop, log: nil, timeout: .seconds(60))
        for signal in [0, SIGKILL] {
            if signal != 0 { gradleDaemonPIDs().forEach { kill($0, signal) } }
            var waited = 0
            while !gradleDaemonPIDs().isEmpty, waited < 100 {
                try? await Task.sleep(for: .milliseconds(50))
                waited += 1
            }
            if gradleDaemonPIDs().isEmpty {
                log.line("stopped the demo's Gradle daemon (pid \(daemons.map(String.init).joined(separator: ", ")))")
                return
            }
        }
        log.line("the demo's Gradle daemon (pid \(gradleDaemonPIDs().map(String.init).joined(separator: ", "))) is still running")
    }

    /// The Gradle daemons that run with the demo's Gradle home (read from `/proc/<pid>/environ`).
    func gradleDaemonPIDs() -> [Int32] {
        let home = Data("GRADLE_USER_HOME=\(gradleHome)".utf8)
        let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init)
        return pids.filter { pid in
            guard let commandLine = ProcFile.read("/proc/\(pid)/cmdline"),
                  commandLine.range(of: Data("GradleDaemon".utf8)) != nil,
                  let environment = ProcFile.read("/proc/\(pid)/environ")
            else { return false }
            return environment.split(separator: 0).contains { Data($0) == home }
        }
    }
}

/// Why the demo could not run, in a sentence that says what to do.
public struct DemoError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
