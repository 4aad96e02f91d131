import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import PushDeploy

/// The switch as the shipped unit runs it: `ProtectProc=invisible` hides nginx's workers from pushdeploy.
///
/// The test plays the unit's part: `pushdeploy serve` runs as user `daemon` in a mount namespace of its own whose
/// `/proc` is mounted `hidepid=invisible`, so nginx's workers (user `nobody`) are invisible to it, and it cannot
/// signal root's nginx; a helper running as root plays systemd's (`systemctl reload nginx.service` over D-Bus,
/// `systemctl start pushdeploy-nginx-test.service`), asked through two FIFOs.
@Suite("The switch under the unit's ProtectProc=invisible", .serialized)
struct HiddenProcSwitchTests {
    static let toolsPresent = getuid() == 0 && ["/usr/sbin/nginx", "/usr/bin/python3", "/usr/bin/git", "/usr/bin/curl", "/usr/bin/unshare",
                                                 "/usr/bin/setpriv", "/usr/bin/env", "/bin/sh", "/bin/chown"]
        .allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }

    @Test("a switch returns only after the old worker's request to the removed port has finished (200 from the old release)",
          .enabled(if: toolsPresent, "needs root, nginx, python3, git, curl, unshare and setpriv"), .timeLimit(.minutes(3)))
    func switchWaitsForTheOldWorkersConnections() async throws {
        try HiddenProcLab.checkSandbox()
        let lab = try HiddenProcLab()
        defer { lab.tearDown() }
        try await lab.startServer()

        let first = try await lab.waitUntilFinished(try lab.deploy())
        #expect(first.status == .succeeded, "\(first.error ?? "")\n\(lab.serverLog)")
        let v1 = try #require(first.version)
        #expect(lab.site.served() == "app \(v1)")

        // A busy machine: /proc/net/tcp runs to many pages, and the connection to wait for may be on any of them.
        let idle = try IdleConnections(count: 200)
        defer { idle.close() }
        #expect(String(decoding: ProcFile.read("/proc/net/tcp") ?? Data(), as: UTF8.self).split(separator: "\n").count > 400)

        // A slow request reaches the live release through nginx's current worker; it stays open until the test says so.
        let slow = try lab.startSlowRequest()
        defer { slow.stop() }
        try await lab.waitForFile("slow-arrived")

        try lab.commit("a second release")
        let id = try lab.deploy()
        // New connections reach the new release: nginx has reloaded, its old worker still holds the slow request.
        let v2 = try await lab.waitUntilServedOtherThan(v1)
        try await Task.sleep(for: .seconds(2))
        let log = lab.deploymentLog(id)
        #expect(!log.contains("nginx: switched to"), "the switch returned while the old worker's request was running:\n\(log)")
        #expect(lab.record(id)?.status == .switching)
        #expect(slow.isRunning, "the slow request ended before it was let go")

        lab.letSlowRequestFinish()
        let (status, body) = try await slow.result()
        #expect(status == "200" && body == "app \(v1)", "the request in flight when traffic moved: \(status) \(body)")
        let second = try await lab.waitUntilFinished(id)
        #expect(second.status == .succeeded, "\(second.error ?? "")\n\(lab.serverLog)")
        #expect(v2 == "app \(second.version ?? "?")")
        let finalLog = lab.deploymentLog(id)
        #expect(finalLog.contains("(no nginx worker visible in /proc: waited for the connections)"),
                "pushdeploy saw nginx's workers, so this did not play the unit's part:\n\(finalLog)")
        #expect(!finalLog.contains("still there after"), "\(finalLog)")
        let waited = finalLog.firstMatch(of: #/old workers and their connections gone after (\d+) ms/#).flatMap { Int($0.1) }
        #expect((waited ?? 0) >= 1500, "the switch waited \(waited.map(String.init) ?? "?") ms for the old connections (held for 2 s)")
        #expect(lab.site.served() == "app \(second.version ?? "?")")
    }
}

/// A folder, a private nginx (root, workers as `nobody`), the root-side reload helper, and `pushdeploy serve` as
/// `daemon` behind a hidden `/proc`; ``tearDown()`` stops all of it.
private final class HiddenProcLab {
    static let user = "daemon"

    let site: BlueGreenLab
    let token = "hidden-proc-\(UUID().uuidString)"
    let serverPort = Integration.freePort()
    private var server: pid_t?
    private var helper: pid_t?

    var folder: String { site.folder }
    private var source: String { folder + "/source" }
    private var signals: String { folder + "/signals" }
    private var control: String { folder + "/systemd" }

    /// Fails the test, with the reason, when this machine cannot give a process a hidden `/proc` (a container without
    /// CAP_SYS_ADMIN, say): the test would prove nothing without it.
    static func checkSandbox() throws {
        let check = "mount -t proc -o hidepid=invisible proc /proc && exec /usr/bin/setpriv --reuid=\(user) --regid=\(user) --clear-groups "
            + "/bin/sh -c 'test -d /proc/self && ! test -e /proc/1'"
        let (status, output) = try Integration.run("/usr/bin/unshare", ["-m", "/bin/sh", "-c", check])
        try #require(status == 0, "cannot mount a /proc with hidepid=invisible in a private mount namespace here: \(output)")
    }

    init() throws {
        site = try BlueGreenLab("hiddenproc")
        do {
            try prepare()
        } catch {
            tearDown()
            throw error
        }
    }

    private func prepare() throws {
        let manager = FileManager.default
        for folder in [source, signals, control, folder + "/state", folder + "/bin"] {
            try manager.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        // The app: answers /health with UP, / with its version, and holds /slow until the test creates signals/slow-release.
        try """
        import http.server, os, sys, time
        port, version, signals = int(sys.argv[1]), sys.argv[2], sys.argv[3]
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def do_GET(self):
                if self.path == "/slow":
                    open(os.path.join(signals, "slow-arrived"), "w").close()
                    while not os.path.exists(os.path.join(signals, "slow-release")):
                        time.sleep(0.02)
                body = ("UP" if self.path == "/health" else "app " + version).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *args):
                pass
        http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()

        """.write(toFile: source + "/backend.py", atomically: true, encoding: .utf8)
        try git(["init", "-q", "-b", "main"])
        try git(["add", "-A"])
        try git(["commit", "-q", "-m", "backend"])

        // systemd's part, as root: `test` runs nginx -t, `reload` reloads; the answer is the exit status.
        try """
        #!/bin/sh
        dir=$1; shift
        while :; do
          read -r what < "$dir/request" || continue
          case $what in
            test) "$@" -t -q ;;
            reload) "$@" -s reload ;;
            *) false ;;
          esac > "$dir/last.out" 2>&1
          echo $? > "$dir/answer"
        done
        """.write(toFile: control + "/helper", atomically: true, encoding: .utf8)
        // pushdeploy's side, as the unit's `systemctl reload nginx.service` is.
        try """
        #!/bin/sh
        dir=$(dirname "$0")
        echo "$1" > "$dir/request" || exit 1
        read -r status < "$dir/answer" || exit 1
        exit "$status"
        """.write(toFile: control + "/ask", atomically: true, encoding: .utf8)
        for fifo in ["request", "answer"] where mkfifo(control + "/" + fifo, 0o600) != 0 {
            throw ServerExited(log: "mkfifo \(fifo): \(String(cString: strerror(errno)))")
        }

        // The binary where `daemon` can run it: the checkout may sit in root's home.
        let binary = folder + "/bin/pushdeploy"
        try manager.copyItem(atPath: Integration.executable, toPath: binary)
        try manager.setAttributes([.posixPermissions: 0o755], ofItemAtPath: binary)
        try token.write(toFile: folder + "/token", atomically: true, encoding: .utf8)
        try manager.setAttributes([.posixPermissions: 0o600], ofItemAtPath: folder + "/token")

        let nginx = site.nginx
        let ask = ["/bin/sh", control + "/ask"]
        let quoted = { (list: [String]) in "[" + list.map { "\"\($0)\"" }.joined(separator: ", ") + "]" }
        try """
        listen: 127.0.0.1:\(serverPort)
        state_dir: \(folder)/state
        token_file: token
        apps:
          demo:
            repository: { url: \(source), branch: main }
            build:
              command: ["/bin/sh", "-c", "mkdir -p out && cp backend.py out/app.jar"]
              version: "r-{short_commit}"
              artifact: out/*.jar
            run:
              command: ["/usr/bin/python3", "{jar}", "{port}", "{version}", "\(signals)"]
              stop_timeout: 5s
            strategy: blue-green
            slots: { blue: \(site.slots.blue), green: \(site.slots.green) }
            health: { path: /health, expect_status: 200, expect_body: UP, interval: 100ms, startup_timeout: 20s }
            watch: 0s
            keep_previous_warm: false
            nginx:
              include_file: \(nginx.includeFile)
              test: \(quoted(ask + ["test"]))
              reload: \(quoted(ask + ["reload"]))
              verify_url: \(nginx.nginxConfig.verifyURL ?? "")
        """.write(toFile: folder + "/pushdeploy.yml", atomically: true, encoding: .utf8)

        try site.startNginx(routedTo: [site.slots.blue], app: "demo",
                            strategy: .blueGreen(blue: site.slots.blue, green: site.slots.green))
        // What the unit's user owns: its state, the repository it fetches, the include file's folder, its token.
        for path in [source, signals, control, folder + "/state", folder + "/token", folder + "/nginx/conf"] {
            let (status, output) = try Integration.run("/bin/chown", ["-R", "\(Self.user):\(Self.user)", path])
            guard status == 0 else { throw ServerExited(log: "chown \(path): \(output)") }
        }
        helper = try Integration.spawn("/bin/sh", [control + "/helper", control, "/usr/sbin/nginx", "-p", nginx.prefix,
                                                   "-c", nginx.prefix + "/conf/nginx.conf"], outputPath: folder + "/helper.log")
    }

    /// Runs git in the repository as root (it belongs to `daemon`, hence `safe.directory`).
    private func git(_ arguments: [String]) throws {
        let (status, output) = try Integration.run("/usr/bin/git", ["-C", source, "-c", "safe.directory=*", "-c", "user.name=t",
                                                                    "-c", "user.email=t@e"] + arguments)
        guard status == 0 else { throw ServerExited(log: "git \(arguments): \(output)") }
    }

    /// A one-line change to the app, committed.
    func commit(_ note: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: source + "/backend.py"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("# \(note)\n".utf8))
        try handle.close()
        try git(["commit", "-q", "-am", note])
    }

    /// Starts `pushdeploy serve` as the unit would run it, and waits until it answers.
    func startServer() async throws {
        let sandbox = "mount -t proc -o hidepid=invisible proc /proc && exec \"$@\""
        server = try Integration.spawn("/usr/bin/unshare", [
            "-m", "/bin/sh", "-c", sandbox, "sh",
            "/usr/bin/setpriv", "--reuid=\(Self.user)", "--regid=\(Self.user)", "--clear-groups",
            "/usr/bin/env", "HOME=\(folder)/state", folder + "/bin/pushdeploy", "serve", "--config", folder + "/pushdeploy.yml",
        ], outputPath: folder + "/server.log")
        for _ in 0..<400 {
            if (try? Integration.run("/usr/bin/curl", ["-sf", "-m", "1", "http://127.0.0.1:\(serverPort)/healthz"]))?.status == 0 { return }
            var status: Int32 = 0
            if let pid = server, waitpid(pid, &status, WNOHANG) == pid {
                server = nil
                throw ServerExited(log: serverLog)
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ServerExited(log: "not ready after 20 s: \(serverLog)")
    }

    var serverLog: String { (try? String(contentsOfFile: folder + "/server.log", encoding: .utf8)) ?? "" }

    /// Queues a deployment through the CLI and returns its id.
    func deploy() throws -> Int {
        let (status, output) = try Integration.run(Integration.executable, ["deploy", "--json"],
                                                   environment: ["PUSHDEPLOY_URL": "http://127.0.0.1:\(serverPort)", "PUSHDEPLOY_TOKEN": token])
        guard status == 0, let id = ServeLab.deploymentID(in: output) else { throw ServerExited(log: "deploy failed: \(output)") }
        return id
    }

    func record(_ id: Int) -> Deployment? {
        let path = String(format: "%@/state/deployments/demo/%06d.json", folder, id)
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder.pushDeploy.decode(Deployment.self, from: data)
    }

    func deploymentLog(_ id: Int) -> String {
        (try? String(contentsOfFile: String(format: "%@/state/deployments/demo/%06d.log", folder, id), encoding: .utf8)) ?? ""
    }

    func waitUntilFinished(_ id: Int, timeout: Duration = .seconds(60)) async throws -> Deployment {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let record = record(id), record.status.isFinished { return record }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw ServerExited(log: "deployment \(id) did not finish: \(String(describing: record(id)))\n\(deploymentLog(id))\n\(serverLog)")
    }

    /// Waits until new connections through nginx are answered by another release than `old`; returns that answer.
    func waitUntilServedOtherThan(_ old: String, timeout: Duration = .seconds(60)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let body = site.served(), body != "app \(old)" { return body }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ServerExited(log: "nginx never answered from a release other than \(old)\n\(serverLog)")
    }

    func waitForFile(_ name: String, timeout: Duration = .seconds(10)) async throws {
        let deadline = ContinuousClock.now + timeout
        while !FileManager.default.fileExists(atPath: signals + "/" + name) {
            guard ContinuousClock.now < deadline else { throw ServerExited(log: "\(name) did not appear") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// `GET /slow` through nginx with curl, in the background.
    func startSlowRequest() throws -> SlowRequest {
        try SlowRequest(url: "http://127.0.0.1:\(site.nginx.port)/slow", folder: folder)
    }

    func letSlowRequestFinish() {
        _ = FileManager.default.createFile(atPath: signals + "/slow-release", contents: nil)
    }

    /// Lets a held request go, stops the server and the app instances it recorded, the helper, then nginx and the folder.
    func tearDown() {
        letSlowRequestFinish()
        if let server { Integration.terminate(server) }
        server = nil
        if let data = FileManager.default.contents(atPath: folder + "/state/apps/demo/state.json"),
           let state = try? JSONDecoder.pushDeploy.decode(AppState.self, from: data) {
            for entry in state.entries {
                if let pid = entry.instance.pid { kill(-pid, SIGKILL); kill(pid, SIGKILL) }
            }
        }
        if let helper { Integration.terminate(helper) }
        helper = nil
        site.tearDown()
    }
}

/// One curl request running in the background; its status code and body once it ends.
private final class SlowRequest {
    private var pid: pid_t?
    private let output: String
    private let bodyFile: String

    init(url: String, folder: String) throws {
        output = folder + "/slow.out"
        bodyFile = folder + "/slow.body"
        pid = try Integration.spawn("/usr/bin/curl", ["-s", "-m", "60", "-o", bodyFile, "-w", "%{http_code}", url], outputPath: output)
    }

    var isRunning: Bool {
        guard let pid else { return false }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid {
            self.pid = nil
            return false
        }
        return true
    }

    /// Waits (up to 30 s) for curl to end; the status code it printed and the body.
    func result() async throws -> (status: String, body: String) {
        let deadline = ContinuousClock.now + .seconds(30)
        while isRunning {
            guard ContinuousClock.now < deadline else { throw ServerExited(log: "the slow request did not end") }
            try await Task.sleep(for: .milliseconds(20))
        }
        return ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "",
                (try? String(contentsOfFile: bodyFile, encoding: .utf8)) ?? "")
    }

    func stop() {
        if let pid { Integration.terminate(pid) }
        pid = nil
    }
}

/// Idle loopback connections (both ends held by the test), so the kernel's socket tables are longer than one read.
private final class IdleConnections {
    private var descriptors: [Int32] = []

    init(count: Int) throws {
        let (listener, port) = try Integration.listeningSocket()
        descriptors.append(listener)
        for _ in 0..<count {
            let client = Integration.connect(port)
            guard client >= 0 else {
                close()
                throw ServerExited(log: "could not open idle connection \(descriptors.count / 2)")
            }
            descriptors.append(client)
            let accepted = accept(listener, nil, nil)
            if accepted >= 0 { descriptors.append(accepted) }
        }
    }

    func close() {
        descriptors.forEach { Glibc.close($0) }
        descriptors = []
    }
}
