import Foundation
import Testing
@testable import PushDeploy

@Suite("nginx include file")
struct NginxIncludeTests {
    @Test("blue-green sets $service_url to the live slot and names the other slot as the fallback")
    func blueGreenForm() throws {
        let text = try NginxInclude.render([8082], app: "shop", strategy: .blueGreen(blue: 8081, green: 8082))
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("# Written by pushdeploy for app shop") == true)
        let directives = lines.filter { !$0.hasPrefix("#") }.map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(directives.prefix(3) == ["set $service_url http://127.0.0.1:8082;", "set $pushdeploy_fallback http://127.0.0.1:8081;",
                                         "location @pushdeploy_fallback {"])
        #expect(directives.contains("proxy_pass $pushdeploy_fallback;"))
        #expect(NginxInclude.ports(in: text) == [8082])
        let back = try NginxInclude.render([8081], app: "shop", strategy: .blueGreen(blue: 8081, green: 8082))
        #expect(back.contains("set $pushdeploy_fallback http://127.0.0.1:8082;"))
        #expect(NginxInclude.ports(in: back) == [8081])
    }

    @Test("rolling writes an <app>_backend upstream with keepalive, even for one port")
    func rollingForm() throws {
        let three = try NginxInclude.render([8081, 8082, 8083], app: "shop", strategy: .rolling(instances: [8081, 8082, 8083]))
        #expect(three.contains("""
        upstream shop_backend {
            server 127.0.0.1:8081;
            server 127.0.0.1:8082;
            server 127.0.0.1:8083;
            keepalive 16;
        }
        """))
        #expect(three.contains("proxy_pass http://shop_backend;"))
        #expect(NginxInclude.ports(in: three) == [8081, 8082, 8083])

        let one = try NginxInclude.render([8082], app: "shop", strategy: .rolling(instances: [8081, 8082]))
        #expect(one.contains("upstream shop_backend {"))
        #expect(NginxInclude.ports(in: one) == [8082])
        #expect(NginxInclude.upstreamName(app: "my-app") == "my-app_backend")
    }

    @Test("ports that cannot be written are refused before anything is touched",
          arguments: [([Int](), "no port"), ([0], "0 is not a TCP port"), ([70000], "70000 is not a TCP port"),
                      ([8081, 8081], "listed twice")])
    func invalidPorts(ports: [Int], reason: String) {
        let error = #expect(throws: TrafficError.self) {
            try NginxInclude.render(ports, app: "shop", strategy: .rolling(instances: [8081]))
        }
        guard case let .invalidPorts(app, _, found) = error else {
            Issue.record("expected invalidPorts, got \(String(describing: error))")
            return
        }
        #expect(app == "shop")
        #expect(found.contains(reason))
    }

    @Test("canary splits per request with split_clients at http level; the fallback is the other release")
    func canaryForm() throws {
        let strategy = Strategy.canary(blue: 8081, green: 8082, plan: CanaryPlan())
        let step = try NginxInclude.render([8081, 8082], app: "my-shop", strategy: strategy, canaryPercent: 10)
        #expect(step.contains("""
        split_clients "${request_id}" $pushdeploy_my_shop_url {
            10% http://127.0.0.1:8082;
            * http://127.0.0.1:8081;
        }
        split_clients "${request_id}" $pushdeploy_my_shop_fallback {
            10% http://127.0.0.1:8081;
            * http://127.0.0.1:8082;
        }
        """))
        #expect(NginxInclude.ports(in: step) == [8081, 8082], "the stable release first")
        let whole = try NginxInclude.render([8082], app: "my-shop", strategy: strategy)
        #expect(whole.contains("map $request_id $pushdeploy_my_shop_url { default http://127.0.0.1:8082; }"))
        #expect(whole.contains("map $request_id $pushdeploy_my_shop_fallback { default http://127.0.0.1:8081; }"))
        #expect(NginxInclude.ports(in: whole) == [8082])
        #expect(throws: TrafficError.self) { try NginxInclude.render([8081, 8082], app: "shop", strategy: strategy, canaryPercent: 100) }
        #expect(throws: TrafficError.self) { try NginxInclude.render([8081, 8082], app: "shop", strategy: strategy) }
        #expect(throws: TrafficError.self) {
            try NginxInclude.render([8081, 8082], app: "shop", strategy: .rolling(instances: [8081, 8082]), canaryPercent: 10)
        }
    }

    @Test("a canary step is a real nginx configuration: nginx -t accepts both forms", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/sbin/nginx")))
    func canaryFormPassesNginxTest() throws {
        let scratch = ScratchDirectory()
        let strategy = Strategy.canary(blue: 8081, green: 8082, plan: CanaryPlan())
        for text in [try NginxInclude.render([8081, 8082], app: "shop", strategy: strategy, canaryPercent: 25),
                     try NginxInclude.render([8081], app: "shop", strategy: strategy)] {
            try text.write(toFile: scratch.path + "/shop.inc", atomically: true, encoding: .utf8)
            try FileManager.default.createDirectory(atPath: scratch.path + "/logs", withIntermediateDirectories: true)
            try """
            pid \(scratch.path)/nginx.pid;
            error_log \(scratch.path)/logs/error.log;
            events {}
            http {
                include \(scratch.path)/shop.inc;
                server {
                    listen 127.0.0.1:1;
                    location / { proxy_pass $pushdeploy_shop_url; error_page 502 504 = @pushdeploy_fallback; }
                    location @pushdeploy_fallback { proxy_pass $pushdeploy_shop_fallback; }
                }
            }
            """.write(toFile: scratch.path + "/nginx.conf", atomically: true, encoding: .utf8)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/nginx")
            process.arguments = ["-p", scratch.path, "-c", scratch.path + "/nginx.conf", "-t", "-q"]
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "nginx -t refused:\n\(text)")
        }
    }

    @Test("blue-green refuses more than one port")
    func blueGreenOnePort() {
        #expect(throws: TrafficError.invalidPorts(app: "shop", ports: [8081, 8082], reason: "blue-green sends traffic to exactly one slot")) {
            try NginxInclude.render([8081, 8082], app: "shop", strategy: .blueGreen(blue: 8081, green: 8082))
        }
    }

    @Test("parsing reads hand-written variants and ignores comments; text in neither form is nil")
    func parsing() {
        #expect(NginxInclude.ports(in: "set $service_url http://localhost:9001/;  # blue\n") == [9001])
        #expect(NginxInclude.ports(in: "# upstream x { server 127.0.0.1:1; }\nset $service_url http://127.0.0.1:9002;") == [9002])
        #expect(NginxInclude.ports(in: "upstream a_backend {\n\tserver 127.0.0.1:9003 max_fails=2;\n server [::1]:9004;\n}\nserver_name x;") == [9003, 9004])
        #expect(NginxInclude.ports(in: "") == nil)
        #expect(NginxInclude.ports(in: "location / { return 200; }") == nil)
    }

    @Test("a version counts only as a whole word of the answer")
    func versionInBody() {
        #expect(NginxTrafficSwitch.body("demo-app 1.0.1", names: "1.0.1"))
        #expect(NginxTrafficSwitch.body("demo-app 1.0.1\n", names: "1.0.1"))
        #expect(NginxTrafficSwitch.body("{\"version\":\"1.0-SNAPSHOT-20250101\"}", names: "1.0-SNAPSHOT-20250101"))
        #expect(NginxTrafficSwitch.body("running 1.0.", names: "1.0"))
        #expect(!NginxTrafficSwitch.body("demo-app 1.0.1", names: "1.0"))
        #expect(!NginxTrafficSwitch.body("demo-app 11.0", names: "1.0"))
        #expect(!NginxTrafficSwitch.body("demo-app 2.0", names: "1.0"))
    }

    @Test("verify URLs: http only, port 80 by default, path and query kept")
    func verifyTargets() throws {
        let plain = try NginxProbe.Target(url: "http://127.0.0.1/")
        #expect(plain == NginxProbe.Target(host: "127.0.0.1", port: 80, path: "/"))
        #expect(plain.hostHeader == "127.0.0.1")
        let full = try NginxProbe.Target(url: "http://shop.local:8080/version?x=1")
        #expect(full == NginxProbe.Target(host: "shop.local", port: 8080, path: "/version?x=1"))
        #expect(full.hostHeader == "shop.local:8080")
        #expect(try NginxProbe.Target(url: "http://[::1]:81").hostHeader == "[::1]:81")
        #expect(throws: TrafficError.self) { try NginxProbe.Target(url: "https://shop.example/") }
        #expect(throws: TrafficError.self) { try NginxProbe.Target(url: "127.0.0.1:80") }
    }
}
