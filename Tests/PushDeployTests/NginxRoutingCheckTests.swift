import Foundation
import Testing
@testable import PushDeploy

/// `pushdeploy check` reads `nginx -T`: can a switch of the app be proven through verify_url?
@Suite("nginx routing check")
struct NginxRoutingCheckTests {
    private static let exampleSite = try! String(
        contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("examples/nginx-site.conf"), encoding: .utf8)

    private func app(verifyURL: String? = "http://127.0.0.1/", strategy: Strategy = .blueGreen(blue: 8081, green: 8082)) -> AppConfig {
        AppConfig(name: "shop", repository: RepositoryConfig(url: "/unused"), webhooks: WebhookSecrets(), build: BuildConfig(),
                  run: RunConfig(), strategy: strategy, health: HealthConfig(), watch: .zero, keepPreviousWarm: true,
                  nginx: NginxConfig(includeFile: "/etc/nginx/pushdeploy/shop.inc", verifyURL: verifyURL), keepReleases: 5,
                  hooks: LifecycleHooks())
    }

    private func dump(site: String = exampleSite, include: Bool = true) -> String {
        var text = """
        nginx: the configuration file /etc/nginx/nginx.conf syntax is ok
        # configuration file /etc/nginx/nginx.conf:
        events { worker_connections 768; }
        http {
            include /etc/nginx/sites-enabled/*;
        }

        # configuration file /etc/nginx/sites-enabled/shop:
        \(site)

        """
        if include { text += "# configuration file /etc/nginx/pushdeploy/shop.inc:\nset $service_url http://127.0.0.1:8081;\n\n" }
        return text
    }

    @Test func theExampleSiteProvesTheSwitch() {
        #expect(NginxRoutingCheck.problems(app: app(), dump: dump()).isEmpty)
    }

    @Test("the example's canary site (its commented block, uncommented) proves the switch")
    func theExampleCanarySiteProvesTheSwitch() throws {
        // The canary block at the end of examples/nginx-site.conf, without its comment marks and its sample include text.
        let block = try #require(Self.exampleSite.components(separatedBy: "# Canary (strategy: canary) instead").last)
        let site = block.split(separator: "\n").filter { $0.hasPrefix("#   ") && !$0.hasPrefix("#   #") }
            .map { String($0.dropFirst(4)) }.joined(separator: "\n")
        #expect(site.contains("proxy_pass $pushdeploy_shop_url;"))
        let canary = app(strategy: .canary(blue: 8081, green: 8082, plan: CanaryPlan()))
        let map = "map $pushdeploy_upstream_never $pushdeploy_upstream { default $upstream_addr; }\n"
        #expect(NginxRoutingCheck.problems(app: canary, dump: dump(site: map + site)).isEmpty,
                "\(NginxRoutingCheck.problems(app: canary, dump: dump(site: map + site)))")
        let elsewhere = site.replacingOccurrences(of: "proxy_pass $pushdeploy_shop_url;", with: "proxy_pass http://127.0.0.1:8081;")
            .replacingOccurrences(of: "include /etc/nginx/pushdeploy/shop.inc;", with: "")
        #expect(NginxRoutingCheck.problems(app: canary, dump: dump(site: elsewhere)).first?.message.contains("canary: include it at http level") == true)
    }

    @Test func anIncludeFileNginxDoesNotLoadIsNamed() {
        let problems = NginxRoutingCheck.problems(app: app(), dump: dump(include: false))
        #expect(problems.map(\.path) == ["apps.shop.nginx.include_file"])
        #expect(problems.first?.message.contains("not part of nginx's configuration") == true)
    }

    @Test(arguments: ["http://127.0.0.1:8080/", "http://deploy.example.com/"])
    func aVerifyURLThatMissesTheSiteIsNamed(url: String) {
        let problems = NginxRoutingCheck.problems(app: app(verifyURL: url), dump: dump())
        #expect(problems.map(\.path) == ["apps.shop.nginx.verify_url"])
        #expect(problems.first?.message.contains("does not reach the server that routes shop") == true, "\(problems)")
    }

    @Test func anHTTPSVerifyURLIsRefused() {
        let problems = NginxRoutingCheck.problems(app: app(verifyURL: "https://127.0.0.1/"), dump: dump())
        #expect(problems.first?.message.contains("is not an http:// URL") == true)
    }

    @Test func aSiteWithoutTheHeaderIsNamed() {
        let site = Self.exampleSite.replacingOccurrences(of: "add_header X-Pushdeploy-Upstream $pushdeploy_upstream always;", with: "")
        let problems = NginxRoutingCheck.problems(app: app(), dump: dump(site: site))
        #expect(problems.first?.message.contains("adds no X-Pushdeploy-Upstream header") == true, "\(problems)")
    }

    @Test func noVerifyURLIsAProblem() {
        #expect(NginxRoutingCheck.problems(app: app(verifyURL: nil), dump: dump()).map(\.path) == ["apps.shop.nginx.verify_url"])
    }

    @Test("comments, quotes and nested blocks do not confuse the reader")
    func theParserReadsBlocks() {
        let block = NginxRoutingCheck.Block.parse("""
        # server { listen 9999; }
        server { listen 127.0.0.1:8080; server_name "a.example" b.example; location / { add_header X-Pushdeploy-Upstream '$upstream_addr' always; } }
        server { listen [::]:81 default_server; }
        """)
        #expect(block.servers.count == 2)
        #expect(block.servers[0].listenPorts == [8080])
        #expect(block.servers[0].serverNames == ["a.example", "b.example"])
        #expect(block.servers[0].addsUpstreamHeader)
        #expect(block.servers[1].listenPorts == [81])
        #expect(block.servers[1].answers(host: "anything"))
    }
}
