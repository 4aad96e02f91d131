import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import PushDeploy

/// The real switch against a private nginx on loopback and tiny Python backends that say who they are.
@Suite("nginx traffic switch (real nginx)", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/sbin/nginx")
    && FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")))
struct NginxTrafficSwitchTests {
    @Test("blue-green: switch to the other slot, confirmed through nginx, and back")
    func blueGreen() async throws {
        let lab = try SwitchNginxLab(bodies: ["demo-app 1.0", "demo-app 2.0"], rolling: false)
        defer { lab.tearDown() }
        let (blue, green) = (lab.ports[0], lab.ports[1])
        let app = lab.app(strategy: .blueGreen(blue: blue, green: green))
        let traffic = NginxTrafficSwitch()
        #expect(traffic.currentPorts(app: app) == nil)
        try lab.start(routedTo: [blue], app: app)
        #expect(lab.served() == "demo-app 1.0")

        let log = MemoryDeploymentLog()
        try await traffic.route(to: [green], app: app, expectVersion: "2.0", log: log)
        #expect(lab.served() == "demo-app 2.0")
        #expect(traffic.currentPorts(app: app) == [green])
        #expect(log.text.contains(#/switched to \d+ in \d+ ms \(test \d+ ms, reload \d+ ms, confirmed after \d+ ms\); old workers and their connections gone after \d+ ms/#))

        try await traffic.route(to: [blue], app: app, expectVersion: "1.0", log: log)
        #expect(lab.served() == "demo-app 1.0")
        #expect(traffic.currentPorts(app: app) == [blue])
    }

    @Test("a failing nginx -t leaves the old file and the old traffic, and reports nginx's message")
    func brokenTest() async throws {
        let lab = try SwitchNginxLab(bodies: ["demo-app 1.0", "demo-app 2.0"], rolling: false)
        defer { lab.tearDown() }
        var app = lab.app(strategy: .blueGreen(blue: lab.ports[0], green: lab.ports[1]))
        try lab.start(routedTo: [lab.ports[0]], app: app)
        let before = try String(contentsOfFile: lab.nginx.includeFile, encoding: .utf8)
        // An operator who included the blue-green file at http level: `set` is not allowed there, and nginx -t says so.
        let site = try String(contentsOfFile: lab.nginx.prefix + "/conf/nginx.conf", encoding: .utf8)
        let broken = lab.nginx.prefix + "/conf/broken.conf"
        try site.replacingOccurrences(of: "http {\n", with: "http {\n    include \(lab.nginx.includeFile);\n")
            .write(toFile: broken, atomically: true, encoding: .utf8)
        app.nginx?.test = ["/usr/sbin/nginx", "-p", lab.nginx.prefix, "-c", broken, "-t", "-q"]

        let log = MemoryDeploymentLog()
        let error = await #expect(throws: TrafficError.self) {
            try await NginxTrafficSwitch().route(to: [lab.ports[1]], app: app, expectVersion: "2.0", log: log)
        }
        guard case let .testFailed(_, reason, output) = error else {
            Issue.record("expected testFailed, got \(String(describing: error))")
            return
        }
        #expect(reason == "exit code 1")
        #expect(output.contains { $0.contains("\"set\" directive is not allowed here") })
        #expect(try String(contentsOfFile: lab.nginx.includeFile, encoding: .utf8) == before)
        #expect(NginxTrafficSwitch().currentPorts(app: app) == [lab.ports[0]])
        #expect(lab.served() == "demo-app 1.0")
        #expect(!log.text.contains("reloaded"))
    }

    @Test("a switch to a port where nothing answers is not confirmed: the old file goes back and nginx keeps serving the old backend")
    func notConfirmed() async throws {
        let lab = try SwitchNginxLab(bodies: ["demo-app 1.0", "demo-app 2.0"], rolling: false)
        defer { lab.tearDown() }
        let app = lab.app(strategy: .blueGreen(blue: lab.ports[0], green: lab.ports[1]))
        try lab.start(routedTo: [lab.ports[0]], app: app)
        let before = try String(contentsOfFile: lab.nginx.includeFile, encoding: .utf8)
        let nothing = Integration.freePorts(3).first { !lab.ports.contains($0) && $0 != lab.nginx.port }!

        let log = MemoryDeploymentLog()
        let error = await #expect(throws: TrafficError.self) {
            // nginx names the new port in X-Pushdeploy-Upstream, but with its own 502: no proof.
            try await NginxTrafficSwitch(confirmTimeout: .milliseconds(400))
                .route(to: [nothing], app: app, expectVersion: "3.0", log: log)
        }
        guard case let .notConfirmed(url, expected, _, lastAnswer) = error else {
            Issue.record("expected notConfirmed, got \(String(describing: error))")
            return
        }
        #expect(url == "http://127.0.0.1:\(lab.nginx.port)/")
        #expect(expected == "an answer from port \(nothing) in X-Pushdeploy-Upstream")
        // nginx's 502 for the new port, or the old backend's answer when the reload had not taken effect yet on a busy machine.
        #expect(lastAnswer.hasPrefix("502") || lastAnswer.contains("demo-app 1.0"), "\(lastAnswer)")
        #expect(try String(contentsOfFile: lab.nginx.includeFile, encoding: .utf8) == before)
        #expect(log.text.contains("reloaded with the old include file"))
        #expect(await lab.eventuallyServed("demo-app 1.0"))
    }

    @Test("rolling: an upstream of three ports takes turns, and one taken out gets no requests")
    func rolling() async throws {
        let lab = try SwitchNginxLab(bodies: ["demo-app 1.0 a", "demo-app 1.0 b", "demo-app 1.0 c"], rolling: true)
        defer { lab.tearDown() }
        let app = lab.app(strategy: .rolling(instances: lab.ports))
        let traffic = NginxTrafficSwitch()
        try lab.start(routedTo: [lab.ports[0]], app: app)

        let log = MemoryDeploymentLog()
        try await traffic.route(to: lab.ports, app: app, expectVersion: nil, log: log)
        #expect(traffic.currentPorts(app: app) == lab.ports)
        #expect(await lab.eventuallyServedSet(["demo-app 1.0 a", "demo-app 1.0 b", "demo-app 1.0 c"]))

        try await traffic.route(to: [lab.ports[0], lab.ports[2]], app: app, expectVersion: "1.0", log: log)
        #expect(traffic.currentPorts(app: app) == [lab.ports[0], lab.ports[2]])
        #expect(await lab.eventuallyServedSet(["demo-app 1.0 a", "demo-app 1.0 c"]))
    }
}

/// The blue-green lab with one Python backend per body; ``tearDown()`` stops nginx, the backends, and removes the folder.
private final class SwitchNginxLab {
    let site: BlueGreenLab
    let ports: [Int]
    private let backends: [pid_t]

    var nginx: PrivateNginx { site.nginx }

    init(bodies: [String], rolling: Bool) throws {
        let site = try BlueGreenLab("switch", rolling: rolling)
        // The slots first, so two backends are the blue and green of the lab; a third (rolling) gets a port of its own.
        let taken = [site.nginx.port, site.slots.blue, site.slots.green]
        let ports = Array(([site.slots.blue, site.slots.green] + Integration.freePorts(bodies.count + taken.count).filter { !taken.contains($0) })
            .prefix(bodies.count))
        var started: [pid_t] = []
        do {
            for (port, body) in zip(ports, bodies) {
                started.append(try Self.startBackend(port: port, body: body))
            }
            for port in ports { try Self.waitForListener(port) }
        } catch {
            for backend in started { Integration.terminate(backend) }
            site.tearDown()
            throw error
        }
        self.site = site
        self.ports = ports
        backends = started
    }

    /// Stops every backend (reaped: they are the test process's children, and name no folder), nginx, and removes the folder.
    func tearDown() {
        for backend in backends { Integration.terminate(backend) }
        site.tearDown()
    }

    func app(strategy: Strategy) -> AppConfig {
        AppConfig(name: "demo", repository: RepositoryConfig(url: site.folder + "/unused"), webhooks: WebhookSecrets(), build: BuildConfig(),
                  run: RunConfig(), strategy: strategy, health: HealthConfig(), watch: .zero, keepPreviousWarm: true,
                  nginx: nginx.nginxConfig, keepReleases: 5, hooks: LifecycleHooks())
    }

    /// Writes the first include file as an earlier deployment would have, and starts nginx on it.
    func start(routedTo ports: [Int], app: AppConfig) throws {
        try site.startNginx(routedTo: ports, app: app.name, strategy: app.strategy)
    }

    /// The body nginx answers with now (one new connection), nil unless it is a 200.
    func served() -> String? {
        site.served()
    }

    /// True once nginx answers `body` (old workers finish their requests first), within two seconds.
    func eventuallyServed(_ body: String) async -> Bool {
        for _ in 0..<100 {
            if served() == body { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    /// True once 30 answers in a row come from exactly the backends in `bodies`, within five seconds.
    func eventuallyServedSet(_ bodies: Set<String>) async -> Bool {
        for _ in 0..<10 {
            let seen = Set((0..<30).compactMap { _ in served() })
            if seen == bodies { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    private static let server = """
    import http.server, sys
    port, body = int(sys.argv[1]), sys.argv[2].encode()
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
    """

    private static func startBackend(port: Int, body: String) throws -> pid_t {
        // Not `Process`: its exit tracking was seen to hang beside daemonizing nginx instances.
        try Integration.spawn("/usr/bin/python3", ["-c", server, String(port), body])
    }

    private static func waitForListener(_ port: Int) throws {
        for _ in 0..<250 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            close(fd)
            if connected == 0 { return }
            usleep(20_000)
        }
        throw ServerExited(log: "backend on port \(port) did not start listening")
    }
}
